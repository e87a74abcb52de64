# One Meridian region on Alibaba Cloud: an ACK Pro managed cluster, one node pool per
# fleet pool, the ack-virtual-node add-on (ECI) for serverless pods, and a RAM role the
# unit worker's ServiceAccount assumes through RRSA.

locals {
  create_network = var.network.vpc_id == null
  unit_sa        = "meridian-unit"

  # Resource tags carry the region; pool tags add the pool (ECS tags take these keys).
  tags = merge(var.tags, {
    "meridian.io/region" = var.name
    "managed-by"         = "terraform"
  })
  pools = { for p in var.node_pools : p.name => p }
  pool_labels = {
    for p in var.node_pools : p.name => {
      "meridian.io/region"    = var.name
      "meridian.io/node-pool" = p.name
    }
  }

  vpc_id      = local.create_network ? alicloud_vpc.this[0].id : var.network.vpc_id
  vswitch_ids = local.create_network ? alicloud_vswitch.this[*].id : var.network.subnet_ids
}

# --------------------------------------------------------------------------- network

data "alicloud_enhanced_nat_available_zones" "this" {
  count = local.create_network ? 1 : 0
}

resource "alicloud_vpc" "this" {
  count = local.create_network ? 1 : 0

  vpc_name    = var.name
  cidr_block  = var.network.cidr
  description = "Meridian region ${var.name}"
  tags        = local.tags
}

resource "alicloud_vswitch" "this" {
  count = local.create_network ? var.zone_count : 0

  vpc_id       = alicloud_vpc.this[0].id
  vswitch_name = "${var.name}-${count.index}"
  cidr_block   = cidrsubnet(var.network.cidr, 4, count.index)
  zone_id      = data.alicloud_enhanced_nat_available_zones.this[0].zones[count.index].zone_id
  tags         = local.tags
}

# --------------------------------------------------------------------------- cluster

# ACK names versions "1.31.1-aliyun.1"; the fleet pins a minor ("1.31"), so take the
# newest ACK release of that minor (or exactly the given one when it is a full ACK
# version). Sorting on a zero-padded patch keeps 1.31.10 above 1.31.9.
data "alicloud_cs_kubernetes_version" "this" {
  cluster_type = "ManagedKubernetes"
  profile      = "Default"
}

locals {
  ack_candidates = {
    for m in data.alicloud_cs_kubernetes_version.this.metadata :
    format("%06d %s", tonumber(regex("^[0-9]+\\.[0-9]+\\.([0-9]+)", m.version)[0]), m.version) => m.version
    if m.version == var.kubernetes_version || startswith(m.version, "${var.kubernetes_version}.") || startswith(m.version, "${var.kubernetes_version}-")
  }
  ack_version = length(local.ack_candidates) > 0 ? local.ack_candidates[reverse(sort(keys(local.ack_candidates)))[0]] : null
}

resource "alicloud_cs_managed_kubernetes" "this" {
  name         = var.name
  cluster_spec = var.cluster_spec
  version      = local.ack_version
  vswitch_ids  = local.vswitch_ids
  # A created network has no egress yet; an existing one brings its own.
  new_nat_gateway              = local.create_network
  pod_cidr                     = var.pod_cidr
  service_cidr                 = var.service_cidr
  proxy_mode                   = "ipvs"
  is_enterprise_security_group = true
  # The API server stays on the VPC (intranet SLB); operators reach it over VPN/CEN.
  slb_internet_enabled = false
  # RRSA is how the unit worker gets its RAM role; it cannot be turned off again.
  enable_rrsa                    = true
  deletion_protection            = true
  skip_set_certificate_authority = true
  control_plane_log_components   = ["apiserver", "kcm", "scheduler", "ccm"]
  control_plane_log_ttl          = "30"
  tags                           = local.tags

  addons {
    name = "flannel"
  }
  addons {
    name = "csi-plugin"
  }
  addons {
    name = "csi-provisioner"
  }

  lifecycle {
    precondition {
      condition     = local.ack_version != null
      error_message = "ACK offers no Kubernetes ${var.kubernetes_version} in ${var.region}; pick a version ACK lists."
    }
  }
}

# A short-lived credential, read only for the CA certificate the outputs need.
data "alicloud_cs_cluster_credential" "this" {
  cluster_id                 = alicloud_cs_managed_kubernetes.this.id
  temporary_duration_minutes = 15
}

# --------------------------------------------------------------------------- node pools

resource "alicloud_cs_kubernetes_node_pool" "this" {
  for_each = local.pools

  cluster_id           = alicloud_cs_managed_kubernetes.this.id
  node_pool_name       = each.key
  vswitch_ids          = local.vswitch_ids
  instance_types       = [each.value.machine_type]
  system_disk_category = "cloud_essd"
  system_disk_size     = 120
  # Encrypted with the account's default KMS key.
  system_disk_encrypted = true
  key_name              = var.key_name
  desired_size          = each.value.desired_size

  # The bounds are recorded on the pool either way; they only act when ACK's autoscaler
  # owns the pool. Otherwise Meridian (meridian/nodepools/ack.py) sets desired_size
  # within the fleet file's min/max.
  scaling_config {
    enable   = var.cloud_autoscaler
    min_size = each.value.min_size
    max_size = each.value.max_size
  }

  dynamic "labels" {
    for_each = local.pool_labels[each.key]
    content {
      key   = labels.key
      value = labels.value
    }
  }

  tags = merge(local.tags, local.pool_labels[each.key])

  # ACK repairs broken nodes in place; Meridian still cordons and drains sick nodes
  # first, and upgrades stay a deliberate change of kubernetes_version.
  management {
    enable          = true
    auto_repair     = true
    auto_upgrade    = false
    max_unavailable = 1
  }

  lifecycle {
    # desired_size is Meridian's (or ACK's autoscaler's) to move at run time; the fleet
    # file's desired is only the starting size, so a later apply must not undo a resize.
    ignore_changes = [desired_size]
  }
}

# --------------------------------------------------------------------------- serverless

# ECI-backed virtual nodes. Pods land there when their namespace or pod carries
# alibabacloud.com/eci=true (or tolerate the virtual node's taint); infra/k8s decides that.
resource "alicloud_cs_kubernetes_addon" "virtual_node" {
  count = var.serverless.enabled ? 1 : 0

  cluster_id = alicloud_cs_managed_kubernetes.this.id
  name       = "ack-virtual-node"
  # Release the ECI resources the add-on created when it is removed.
  cleanup_cloud_resources = true

  depends_on = [alicloud_cs_kubernetes_node_pool.this]
}

# --------------------------------------------------------------------------- identity

# Injects the RRSA token and ALIBABA_CLOUD_ROLE_ARN / _OIDC_PROVIDER_ARN / _OIDC_TOKEN_FILE
# into pods whose ServiceAccount names a role; the SDK's default credential chain
# (alibabacloud_credentials, used by meridian/nodepools/ack.py) reads them.
resource "alicloud_cs_kubernetes_addon" "pod_identity_webhook" {
  cluster_id = alicloud_cs_managed_kubernetes.this.id
  name       = "ack-pod-identity-webhook"

  depends_on = [alicloud_cs_kubernetes_node_pool.this]
}

locals {
  rrsa = alicloud_cs_managed_kubernetes.this.rrsa_metadata[0]
}

# Only the meridian-unit ServiceAccount of this cluster can assume the role.
resource "alicloud_ram_role" "unit_worker" {
  role_name            = "${var.name}-meridian-unit"
  description          = "Meridian unit worker of ${var.name}: resizes this cluster's node pools."
  max_session_duration = 3600
  tags                 = local.tags

  assume_role_policy_document = jsonencode({
    Version = "1"
    Statement = [{
      Action    = "sts:AssumeRole"
      Effect    = "Allow"
      Principal = { Federated = [local.rrsa.ram_oidc_provider_arn] }
      Condition = {
        StringEquals = {
          "oidc:aud" = "sts.aliyuncs.com"
          "oidc:iss" = local.rrsa.rrsa_oidc_issuer_url
          "oidc:sub" = "system:serviceaccount:${var.meridian_namespace}:${local.unit_sa}"
        }
      }
    }]
  })
}

# Exactly the ACK calls meridian/nodepools/ack.py makes, on this cluster only (RAM
# scopes ACK actions to a cluster, not to one of its pools).
resource "alicloud_ram_policy" "unit_worker" {
  policy_name = "${var.name}-meridian-unit-nodepools"
  description = "Read and resize the node pools of ACK cluster ${var.name}."

  policy_document = jsonencode({
    Version = "1"
    Statement = [{
      Effect = "Allow"
      Action = [
        "cs:DescribeClusterNodePoolDetail",
        "cs:DescribeClusterNodes",
        "cs:ModifyClusterNodePool",
        "cs:RemoveNodePoolNodes",
      ]
      Resource = ["acs:cs:${var.region}:*:cluster/${alicloud_cs_managed_kubernetes.this.id}"]
    }]
  })
}

resource "alicloud_ram_role_policy_attachment" "unit_worker" {
  role_name   = alicloud_ram_role.unit_worker.role_name
  policy_name = alicloud_ram_policy.unit_worker.policy_name
  policy_type = "Custom"
}
