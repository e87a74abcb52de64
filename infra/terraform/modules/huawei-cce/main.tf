# One Meridian region on Huawei Cloud: a CCE standard cluster (VPC network model), one
# node pool per fleet pool, the CCE Cloud Bursting Engine for CCI add-on for serverless
# pods, and an IAM agency bound to the unit worker's ServiceAccount by CCE pod identity.

locals {
  create_network = var.network.vpc_id == null
  unit_sa        = "meridian-unit"

  # Huawei tag keys take letters, digits and _.:=+-@ but no "/", so the meridian.io keys
  # become meridian.io.<key> as tags; node labels keep the real keys.
  tags = merge(var.tags, {
    "meridian.io.region" = var.name
    "managed-by"         = "terraform"
  })
  pools = { for p in var.node_pools : p.name => p }
  pool_labels = {
    for p in var.node_pools : p.name => {
      "meridian.io/region"    = var.name
      "meridian.io/node-pool" = p.name
    }
  }

  vpc_id     = local.create_network ? huaweicloud_vpc.this[0].id : var.network.vpc_id
  subnet_ids = local.create_network ? huaweicloud_vpc_subnet.this[*].id : var.network.subnet_ids
  # The bursting add-on wants the subnet's IPv4 (Neutron) subnet id besides its id.
  ipv4_subnet_id = local.create_network ? huaweicloud_vpc_subnet.this[0].ipv4_subnet_id : data.huaweicloud_vpc_subnet.given[0].ipv4_subnet_id

  # CCE versions are "v<major>.<minor>"; a patch from the fleet is dropped.
  cce_version = "v${join(".", slice(split(".", var.kubernetes_version), 0, 2))}"
  key_pair    = var.key_pair != null ? var.key_pair : huaweicloud_kps_keypair.nodes[0].name

  # CCI puts its own Services in 10.247.0.0/16, which the cluster subnet must not overlap
  # (integer ranges, as cidrcontains needs Terraform 1.8).
  net_octets  = [for o in split(".", cidrhost(var.network.cidr, 0)) : tonumber(o)]
  net_start   = local.net_octets[0] * 16777216 + local.net_octets[1] * 65536 + local.net_octets[2] * 256 + local.net_octets[3]
  net_size    = pow(2, 32 - tonumber(split("/", var.network.cidr)[1]))
  cci_start   = 10 * 16777216 + 247 * 65536
  cci_overlap = local.net_start < local.cci_start + 65536 && local.cci_start < local.net_start + local.net_size
}

# --------------------------------------------------------------------------- network

data "huaweicloud_availability_zones" "this" {
  count = local.create_network ? 1 : 0
}

data "huaweicloud_vpc_subnet" "given" {
  count = local.create_network ? 0 : 1
  id    = var.network.subnet_ids[0]
}

resource "huaweicloud_vpc" "this" {
  count = local.create_network ? 1 : 0

  name        = var.name
  cidr        = var.network.cidr
  description = "Meridian region ${var.name}"
  tags        = local.tags
}

resource "huaweicloud_vpc_subnet" "this" {
  count = local.create_network ? var.zone_count : 0

  name              = "${var.name}-${count.index}"
  vpc_id            = huaweicloud_vpc.this[0].id
  cidr              = cidrsubnet(var.network.cidr, 4, count.index)
  gateway_ip        = cidrhost(cidrsubnet(var.network.cidr, 4, count.index), 1)
  availability_zone = data.huaweicloud_availability_zones.this[0].names[count.index]
  primary_dns       = var.dns_servers[0]
  secondary_dns     = length(var.dns_servers) > 1 ? var.dns_servers[1] : null
  tags              = local.tags
}

# --------------------------------------------------------------------------- cluster

resource "huaweicloud_cce_cluster" "this" {
  name            = var.name
  description     = "Meridian region ${var.name}"
  flavor_id       = var.cluster_flavor
  cluster_version = local.cce_version
  vpc_id          = local.vpc_id
  subnet_id       = local.subnet_ids[0]
  # The VPC network model: the only one the CCI bursting add-on supports.
  container_network_type = "vpc-router"
  container_network_cidr = var.pod_cidr
  service_network_cidr   = var.service_cidr
  kube_proxy_mode        = "ipvs"
  # Control plane nodes spread over zones (HA flavors only).
  multi_az = startswith(var.cluster_flavor, "cce.s2.")
  # No EIP: the API server stays on the VPC; operators reach it over VPN/Cloud Connect.
  tags = local.tags

  lifecycle {
    precondition {
      condition     = !var.serverless.enabled || !local.create_network || !local.cci_overlap
      error_message = "With serverless (CCI bursting) on, network.cidr must not overlap 10.247.0.0/16."
    }
  }
}

# --------------------------------------------------------------------------- node pools

# Created only when no key pair is given: the private key stays in KPS, KMS-encrypted,
# and never enters Terraform state.
resource "huaweicloud_kps_keypair" "nodes" {
  count = var.key_pair == null ? 1 : 0

  name            = "${var.name}-nodes"
  scope           = "account"
  encryption_type = "kms"
  kms_key_name    = "kps/default"
  description     = "Login key of the Meridian region ${var.name} nodes."
}

resource "huaweicloud_cce_node_pool" "this" {
  for_each = local.pools

  cluster_id         = huaweicloud_cce_cluster.this.id
  name               = each.key
  type               = "vm"
  flavor_id          = each.value.machine_type
  os                 = var.node_os
  key_pair           = local.key_pair
  subnet_id          = local.subnet_ids[0]
  initial_node_count = each.value.desired_size
  # The provider's own switch for the same reason as ignore_changes below.
  ignore_initial_node_count = true

  # The bounds are recorded on the pool either way; they only act when CCE's autoscaler
  # owns the pool. Otherwise Meridian (meridian/nodepools/cce_huawei.py) scales the pool
  # within the fleet file's min/max.
  scall_enable   = var.cloud_autoscaler
  min_node_count = each.value.min_size
  max_node_count = each.value.max_size

  labels = local.pool_labels[each.key]
  tags   = merge(local.tags, { "meridian.io.node-pool" = each.key })

  root_volume {
    size       = 50
    volumetype = "GPSSD"
  }

  data_volumes {
    size       = 100
    volumetype = "GPSSD"
  }

  lifecycle {
    # initial_node_count is Meridian's (or CCE's autoscaler's) to move at run time; the
    # fleet file's desired is only the starting size, so a later apply must not undo a
    # resize.
    ignore_changes = [initial_node_count]
  }
}

# --------------------------------------------------------------------------- serverless

data "huaweicloud_identity_projects" "this" {
  count = var.serverless.enabled ? 1 : 0
  name  = var.region
}

# CCE Cloud Bursting Engine for CCI: a virtual kubelet that runs pods on CCI 2.0. The
# values follow the add-on's parameters in the CCE API reference (basic: cluster, VPC,
# network and project ids; custom: the IPv4 subnet id). CCI needs VPC endpoints for SWR
# and OBS in this VPC and CCI's authorisation to access CCE (see README).
resource "huaweicloud_cce_addon" "bursting" {
  count = var.serverless.enabled ? 1 : 0

  cluster_id    = huaweicloud_cce_cluster.this.id
  template_name = "virtual-kubelet"
  version       = var.bursting_addon_version

  values {
    basic_json = jsonencode({
      cluster_id   = huaweicloud_cce_cluster.this.id
      cluster_name = var.name
      vpc_id       = local.vpc_id
      network_id   = local.subnet_ids[0]
      project_id   = data.huaweicloud_identity_projects.this[0].projects[0].id
    })
    custom_json = jsonencode({
      subnet_id = local.ipv4_subnet_id
    })
  }

  depends_on = [huaweicloud_cce_node_pool.this]
}

# --------------------------------------------------------------------------- identity

# CCE pod identity binds an IAM agency to one ServiceAccount; CCE, the delegated service
# (op_svc_cce), obtains the agency's temporary credentials for that ServiceAccount's pods.
resource "huaweicloud_identity_agency" "unit_worker" {
  name                  = "${var.name}-meridian-unit"
  description           = "Meridian unit worker of ${var.name}: resizes this cluster's node pools."
  delegated_domain_name = "op_svc_cce"
  duration              = "FOREVER"
}

# Exactly the CCE calls meridian/nodepools/cce_huawei.py makes (ShowNodePool, ListNodes,
# ScaleNodePool, UpdateNodePool, DeleteNode), on this cluster only.
resource "huaweicloud_identityv5_policy" "unit_worker" {
  name        = "${var.name}-meridian-unit-nodepools"
  description = "Read and resize the node pools of CCE cluster ${var.name}."

  policy_document = jsonencode({
    Version = "5.0"
    Statement = [{
      Effect = "Allow"
      Action = [
        "cce:nodepool:get",
        "cce:nodepool:scale",
        "cce:nodepool:update",
        "cce:node:list",
        "cce:node:delete",
      ]
      Resource = ["cce:${var.region}:*:cluster:${huaweicloud_cce_cluster.this.id}"]
    }]
  })
}

resource "huaweicloud_identityv5_policy_agency_attach" "unit_worker" {
  policy_id = huaweicloud_identityv5_policy.unit_worker.id
  agency_id = huaweicloud_identity_agency.unit_worker.id
}

resource "huaweicloud_cce_cluster_pod_identity_association" "unit_worker" {
  cluster_id      = huaweicloud_cce_cluster.this.id
  namespace       = var.meridian_namespace
  service_account = local.unit_sa
  agency_name     = huaweicloud_identity_agency.unit_worker.name
  # No tags: they cannot be updated on this resource, so a tag edit would fail the apply.
}
