# One Meridian region on Tencent Cloud: a TKE managed cluster, one node pool per fleet
# pool, a serverless (super node) pool, and a CAM role the unit worker's ServiceAccount
# assumes through TKE's OIDC pod identity.

locals {
  create_network = var.network.vpc_id == null
  unit_sa        = "meridian-unit"
  # The audience TKE's pod-identity webhook puts in the projected token by default.
  sts_audience = "sts.cloud.tencent.com"

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

  vpc_id     = local.create_network ? tencentcloud_vpc.this[0].id : var.network.vpc_id
  subnet_ids = local.create_network ? tencentcloud_subnet.this[*].id : var.network.subnet_ids

  # TKE versions are major.minor.patch and TKE skips some minors; a fleet minor gets ".0"
  # unless tke_version or a patch in kubernetes_version says otherwise.
  tke_version = coalesce(
    var.tke_version,
    length(split(".", var.kubernetes_version)) == 3 ? var.kubernetes_version : "${var.kubernetes_version}.0",
  )
}

# --------------------------------------------------------------------------- network

data "tencentcloud_availability_zones_by_product" "cvm" {
  count   = local.create_network ? 1 : 0
  product = "cvm"
}

resource "tencentcloud_vpc" "this" {
  count = local.create_network ? 1 : 0

  name       = var.name
  cidr_block = var.network.cidr
  tags       = local.tags
}

resource "tencentcloud_subnet" "this" {
  count = local.create_network ? var.zone_count : 0

  name              = "${var.name}-${count.index}"
  vpc_id            = tencentcloud_vpc.this[0].id
  cidr_block        = cidrsubnet(var.network.cidr, 4, count.index)
  availability_zone = data.tencentcloud_availability_zones_by_product.cvm[0].zones[count.index].name
  tags              = local.tags
}

# --------------------------------------------------------------------------- cluster

resource "tencentcloud_kubernetes_cluster" "this" {
  cluster_name        = var.name
  cluster_desc        = "Meridian region ${var.name}"
  cluster_deploy_type = "MANAGED_CLUSTER"
  cluster_version     = local.tke_version
  vpc_id              = local.vpc_id
  cluster_cidr        = var.pod_cidr
  service_cidr        = var.service_cidr
  cluster_max_pod_num = 64
  container_runtime   = "containerd"
  # Kubernetes node names are the nodes' LAN IPs, which is what the TKE adapter expects
  # by default (node_name = lan-ip).
  node_name_type      = "lan-ip"
  deletion_protection = true
  tags                = local.tags

  # TKE's log agent on every node, so container logs can be shipped to CLS.
  log_agent {
    enabled = true
  }
}

# The API server on the VPC only (a CLB in the first subnet); operators reach it over
# VPN/CCN. TKE opens an endpoint only once the cluster has nodes, hence depends_on.
resource "tencentcloud_kubernetes_cluster_endpoint" "this" {
  cluster_id                 = tencentcloud_kubernetes_cluster.this.id
  cluster_intranet           = true
  cluster_intranet_subnet_id = local.subnet_ids[0]

  depends_on = [tencentcloud_kubernetes_node_pool.this]
}

# --------------------------------------------------------------------------- node pools

resource "tencentcloud_kubernetes_node_pool" "this" {
  for_each = local.pools

  name                     = each.key
  cluster_id               = tencentcloud_kubernetes_cluster.this.id
  vpc_id                   = local.vpc_id
  subnet_ids               = local.subnet_ids
  multi_zone_subnet_policy = "EQUALITY"
  retry_policy             = "INCREMENTAL_INTERVALS"
  # TKE keeps min/max as the scaling group's bounds for every pool; only when its
  # autoscaler is on does it also move desired itself. Otherwise Meridian
  # (meridian/nodepools/tke.py) sets desired within these bounds.
  min_size          = each.value.min_size
  max_size          = each.value.max_size
  desired_capacity  = each.value.desired_size
  enable_auto_scale = var.cloud_autoscaler
  # Nodes Meridian removes are terminated, not kept as orphans.
  delete_keep_instance = false
  labels               = local.pool_labels[each.key]
  tags                 = merge(local.tags, local.pool_labels[each.key])

  auto_scaling_config {
    instance_type              = each.value.machine_type
    system_disk_type           = "CLOUD_PREMIUM"
    system_disk_size           = 100
    orderly_security_group_ids = length(var.security_group_ids) > 0 ? var.security_group_ids : null
    key_ids                    = length(var.key_ids) > 0 ? var.key_ids : null
    public_ip_assigned         = false
    internet_max_bandwidth_out = 0
    enhanced_security_service  = true
    enhanced_monitor_service   = true

    data_disk {
      disk_type = "CLOUD_PREMIUM"
      disk_size = 100
      encrypt   = true
    }
  }

  lifecycle {
    # desired_capacity is Meridian's (or TKE's autoscaler's) to move at run time; the
    # fleet file's desired is only the starting size, so a later apply must not undo a
    # resize.
    ignore_changes = [desired_capacity]
  }
}

# --------------------------------------------------------------------------- serverless

# Super nodes, one per subnet (zone). They carry the region label and a taint, so only
# pods that tolerate meridian.io/serverless run there: bursting stays a decision of the
# pod spec, not of the scheduler's free choice.
resource "tencentcloud_kubernetes_serverless_node_pool" "this" {
  count = var.serverless.enabled ? 1 : 0

  cluster_id         = tencentcloud_kubernetes_cluster.this.id
  name               = "serverless"
  security_group_ids = length(var.security_group_ids) > 0 ? var.security_group_ids : null
  labels = {
    "meridian.io/region"     = var.name
    "meridian.io/serverless" = "true"
  }

  dynamic "serverless_nodes" {
    for_each = local.subnet_ids
    content {
      display_name = "${var.name}-super-${serverless_nodes.key}"
      subnet_id    = serverless_nodes.value
    }
  }

  taints {
    key    = "meridian.io/serverless"
    value  = "true"
    effect = "NoSchedule"
  }
}

# --------------------------------------------------------------------------- identity

data "tencentcloud_user_info" "this" {}

# TKE's default service-account issuer, a CAM OIDC identity provider named after the
# cluster, and the pod-identity webhook that projects the token and sets TKE_ROLE_ARN /
# TKE_PROVIDER_ID / TKE_WEB_IDENTITY_TOKEN_FILE for annotated ServiceAccounts, which the
# SDK's DefaultCredentialProvider (meridian/nodepools/tke.py) reads.
resource "tencentcloud_kubernetes_auth_attachment" "this" {
  cluster_id                              = tencentcloud_kubernetes_cluster.this.id
  use_tke_default                         = true
  auto_create_discovery_anonymous_auth    = true
  auto_create_oidc_config                 = true
  auto_install_pod_identity_webhook_addon = true

  depends_on = [tencentcloud_kubernetes_node_pool.this]
}

data "tencentcloud_cam_oidc_config" "this" {
  name = tencentcloud_kubernetes_auth_attachment.this.cluster_id
}

locals {
  uin = data.tencentcloud_user_info.this.owner_uin
}

# Only the meridian-unit ServiceAccount of this cluster can assume the role.
resource "tencentcloud_cam_role" "unit_worker" {
  name             = "${var.name}-meridian-unit"
  description      = "Meridian unit worker of ${var.name}: resizes this cluster's node pools."
  console_login    = false
  session_duration = 3600
  tags             = local.tags

  # CAM policy documents take arrays only where a string or array is allowed.
  document = jsonencode({
    version = "2.0"
    statement = [{
      action    = ["name/sts:AssumeRoleWithWebIdentity"]
      effect    = "allow"
      principal = { federated = ["qcs::cam::uin/${local.uin}:oidc-provider/${tencentcloud_kubernetes_cluster.this.id}"] }
      condition = {
        string_equal = {
          "oidc:iss" = [data.tencentcloud_cam_oidc_config.this.identity_url]
          "oidc:aud" = [local.sts_audience]
          "oidc:sub" = ["system:serviceaccount:${var.meridian_namespace}:${local.unit_sa}"]
        }
      }
    }]
  })
}

# Exactly the TKE calls meridian/nodepools/tke.py makes, on this cluster only (CAM scopes
# TKE actions to a cluster, not to one of its pools).
resource "tencentcloud_cam_policy" "unit_worker" {
  name        = "${var.name}-meridian-unit-nodepools"
  description = "Read and resize the node pools of TKE cluster ${var.name}."

  document = jsonencode({
    version = "2.0"
    statement = [{
      effect = "allow"
      action = [
        "tke:DescribeClusterNodePoolDetail",
        "tke:DescribeClusterInstances",
        "tke:ModifyNodePoolDesiredCapacityAboutAsg",
        "tke:ModifyClusterNodePool",
        "tke:DeleteClusterInstances",
      ]
      resource = ["qcs::tke:${var.region}:uin/${local.uin}:cluster/${tencentcloud_kubernetes_cluster.this.id}"]
    }]
  })
}

resource "tencentcloud_cam_role_policy_attachment" "unit_worker" {
  role_id   = tencentcloud_cam_role.unit_worker.id
  policy_id = tencentcloud_cam_policy.unit_worker.id
}
