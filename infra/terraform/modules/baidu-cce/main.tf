# One Meridian region on Baidu AI Cloud: a CCE (v2) managed cluster, one instance group
# per fleet pool, and an IAM user whose access key the unit worker reads. Serverless
# (BCI) capacity is not managed here: the provider has no BCI resource, so its virtual
# kubelet is installed from infra/k8s/ (see README).

locals {
  create_network = var.network.vpc_id == null
  unit_sa        = "meridian-unit"

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

  # Baidu resource names take letters, digits and underscores.
  resource_name = replace(var.name, "-", "_")

  vpc_id     = local.create_network ? baiducloud_vpc.this[0].id : var.network.vpc_id
  subnet_ids = local.create_network ? baiducloud_subnet.this[*].id : var.network.subnet_ids
  # Zone names ("cn-bj-a") of the subnets, and CCE's own spelling of them ("zoneA").
  subnet_zones = local.create_network ? baiducloud_subnet.this[*].zone_name : [for id in var.network.subnet_ids : data.baiducloud_subnets.given[id].subnets[0].zone_name]
  cce_zones    = [for z in local.subnet_zones : "zone${upper(element(split("-", z), length(split("-", z)) - 1))}"]

  # CCE offers one patch per minor (the provider documents 1.18.9 ... 1.30.1); a minor
  # from the fleet maps to that patch, a patch given anywhere is used as is.
  cce_patches = {
    "1.18" = "1.18.9"
    "1.20" = "1.20.8"
    "1.21" = "1.21.14"
    "1.22" = "1.22.5"
    "1.24" = "1.24.4"
    "1.26" = "1.26.9"
    "1.28" = "1.28.8"
    "1.30" = "1.30.1"
  }
  cce_version = var.cce_version != null ? var.cce_version : (
    length(split(".", var.kubernetes_version)) == 3 ? var.kubernetes_version : lookup(local.cce_patches, var.kubernetes_version, null)
  )
}

# --------------------------------------------------------------------------- network

data "baiducloud_zones" "this" {
  count = local.create_network ? 1 : 0
}

data "baiducloud_subnets" "given" {
  for_each  = local.create_network ? toset([]) : toset(var.network.subnet_ids)
  subnet_id = each.value
}

resource "baiducloud_vpc" "this" {
  count = local.create_network ? 1 : 0

  name        = local.resource_name
  cidr        = var.network.cidr
  description = "Meridian region ${var.name}"
  tags        = local.tags

  lifecycle {
    # Baidu cannot change tags in place (ForceNew); a tag edit must not replace the VPC.
    ignore_changes = [tags]
  }
}

resource "baiducloud_subnet" "this" {
  count = local.create_network ? var.zone_count : 0

  name        = "${local.resource_name}_${count.index}"
  vpc_id      = baiducloud_vpc.this[0].id
  cidr        = cidrsubnet(var.network.cidr, 4, count.index)
  zone_name   = data.baiducloud_zones.this[0].zones[count.index].zone_name
  subnet_type = "BCC"
  tags        = local.tags

  lifecycle {
    # Baidu cannot change tags in place (ForceNew); a tag edit must not replace the subnet.
    ignore_changes = [tags]
  }
}

# --------------------------------------------------------------------------- cluster

resource "baiducloud_ccev2_cluster" "this" {
  tags = local.tags

  cluster_spec {
    cluster_name = var.name
    cluster_type = "normal"
    description  = "Meridian region ${var.name}"
    k8s_version  = local.cce_version
    runtime_type = "containerd"
    vpc_id       = local.vpc_id
    plugins      = ["core-dns", "kube-proxy"]

    master_config {
      master_type = "managed"
      # The API server's BLB stays on the VPC; operators reach it over VPN/CSN.
      exposed_public            = false
      cluster_blb_vpc_subnet_id = local.subnet_ids[0]

      managed_cluster_master_option {
        master_vpc_subnet_zone = local.cce_zones[0]
      }
    }

    container_network_config {
      mode                     = "vpc-eni"
      ip_version               = "ipv4"
      kube_proxy_mode          = "ipvs"
      lb_service_vpc_subnet_id = local.subnet_ids[0]
      cluster_ip_service_cidr  = var.service_cidr
      max_pods_per_node        = 64
      node_port_range_min      = 30000
      node_port_range_max      = 32767

      dynamic "eni_vpc_subnet_ids" {
        for_each = local.subnet_ids
        content {
          zone_and_id = "${local.cce_zones[eni_vpc_subnet_ids.key]}:${eni_vpc_subnet_ids.value}"
        }
      }
    }

    # Deleting the region releases its nodes' disks too; nothing of a region outlives it.
    cluster_delete_option {
      delete_resource     = true
      delete_cds_snapshot = true
    }
  }

  lifecycle {
    # Baidu cannot change cluster tags in place (ForceNew); a tag edit must not replace
    # the cluster.
    ignore_changes = [tags]

    precondition {
      condition     = local.cce_version != null
      error_message = "No CCE release is known for Kubernetes ${var.kubernetes_version}; set cce_version or a kubernetes_version patch CCE offers."
    }
  }
}

# --------------------------------------------------------------------------- node pools

# One instance group per fleet pool, in the first subnet's zone. The provider exposes
# only replicas: the group's cluster-autoscaler bounds are not settable here, so the
# bounds live in the fleet/regions file and Meridian (meridian/nodepools/cce_baidu.py)
# keeps replicas within them.
resource "baiducloud_ccev2_instance_group" "this" {
  for_each = local.pools

  spec {
    cluster_id          = baiducloud_ccev2_cluster.this.id
    instance_group_name = each.key
    replicas            = each.value.desired_size

    instance_template {
      cluster_role           = "node"
      existed                = false
      machine_type           = "BCC"
      instance_type          = var.instance_type
      instance_name          = "${var.name}-${each.key}"
      instance_charging_type = "Postpaid"
      image_id               = var.image_id
      ssh_key_id             = var.ssh_key_id
      need_eip               = false
      labels                 = local.pool_labels[each.key]

      instance_os {
        image_type = "System"
        os_type    = "linux"
      }

      instance_resource {
        machine_spec   = each.value.machine_type
        root_disk_type = "cloud_hp1"
        root_disk_size = 100
      }

      vpc_config {
        vpc_id            = local.vpc_id
        vpc_subnet_id     = local.subnet_ids[0]
        available_zone    = local.cce_zones[0]
        security_group_id = var.security_group_id
      }

      # Instances removed from the group are released with their disks.
      delete_option {
        delete_resource     = true
        delete_cds_snapshot = true
      }

      dynamic "tag_list" {
        for_each = merge(local.tags, local.pool_labels[each.key])
        content {
          tag_key   = tag_list.key
          tag_value = tag_list.value
        }
      }
    }
  }

  lifecycle {
    # replicas is Meridian's to move at run time; the fleet file's desired is only the
    # starting size, so a later apply must not undo a resize.
    ignore_changes = [spec[0].replicas]
  }
}

# --------------------------------------------------------------------------- identity

# Baidu has no workload identity for CCE pods and meridian/nodepools/bce_auth.py reads
# only an access key (BCE_ACCESS_KEY_ID / BCE_SECRET_ACCESS_KEY, or ~/.bce/credentials).
# The nearest equivalent: a dedicated IAM user per region that can do nothing but read and
# resize CCE instance groups in this region, whose key goes into the meridian-unit pod as
# a Kubernetes Secret (see README). The secret is in Terraform state: keep state encrypted.
resource "baiducloud_iam_user" "unit_worker" {
  name          = "${local.resource_name}_meridian_unit"
  description   = "Meridian unit worker of ${var.name}: resizes this cluster's instance groups."
  force_destroy = true
}

# Baidu IAM grants CCE permissions per service and region: CCE_READ covers the instance
# group and instance reads, CCE_OPERATE the replicas/scaledown calls the adapter makes.
resource "baiducloud_iam_policy" "unit_worker" {
  name        = "${local.resource_name}_meridian_unit_nodepools"
  description = "Read and resize CCE instance groups in ${var.region} for ${var.name}."
  document = jsonencode({
    accessControlList = [{
      service    = "bce:cce"
      region     = var.region
      effect     = "Allow"
      resource   = ["*"]
      permission = ["CCE_READ", "CCE_OPERATE"]
    }]
  })
}

resource "baiducloud_iam_user_policy_attachment" "unit_worker" {
  user        = baiducloud_iam_user.unit_worker.name
  policy      = baiducloud_iam_policy.unit_worker.name
  policy_type = "Custom"
}

resource "baiducloud_iam_access_key" "unit_worker" {
  username = baiducloud_iam_user.unit_worker.name
}
