# Meridian region on GCP: a VPC-native network (or an existing one), a regional GKE
# Standard cluster with private nodes and Workload Identity, one node pool per fleet
# pool, node auto-provisioning behind the meridian-burst compute class for burst pods,
# and the unit worker's Google service account limited to resizing node pools.

data "google_client_config" "current" {}

locals {
  project        = coalesce(var.project, data.google_client_config.current.project)
  create_network = var.network.vpc_id == null

  network    = local.create_network ? google_compute_network.this[0].id : var.network.vpc_id
  subnetwork = local.create_network ? google_compute_subnetwork.this[0].id : var.network.subnet_ids[0]

  # GKE spreads a regional pool over its zones and counts initial nodes per zone.
  zone_count = length(var.zones) > 0 ? length(var.zones) : 3

  # Kubernetes node labels use Meridian's keys; GCP labels cannot contain '.' or '/',
  # so resource labels carry the same values as meridian-region / meridian-node-pool.
  region_label    = { "meridian.io/region" = var.name }
  resource_labels = merge(var.tags, { "meridian-region" = var.name, "managed-by" = "terraform" })

  pools = { for p in var.node_pools : p.name => p }

  # Service account ids: 6-30 characters, ending in a letter or digit.
  unit_account_id = replace(substr("mu-${var.name}", 0, 30), "/-+$/", "")
  node_account_id = replace(substr("mn-${var.name}", 0, 30), "/-+$/", "")
  role_suffix     = replace(var.name, "-", "_")

  burst_class = "meridian-burst"
}

# ---------------------------------------------------------------------------------------
# Network: one subnetwork for nodes with secondary ranges for pods and services
# (VPC-native), and Cloud NAT so private nodes can pull images. Skipped with
# network.vpc_id.
# ---------------------------------------------------------------------------------------

resource "google_compute_network" "this" {
  count = local.create_network ? 1 : 0

  project                 = local.project
  name                    = var.name
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "this" {
  count = local.create_network ? 1 : 0

  project                  = local.project
  name                     = "${var.name}-nodes"
  region                   = var.region
  network                  = google_compute_network.this[0].id
  ip_cidr_range            = cidrsubnet(var.network.cidr, 4, 0)
  private_ip_google_access = true # private nodes reach Google APIs without NAT

  # Pods get the upper half of the CIDR: GKE reserves a /24 per node by default.
  secondary_ip_range {
    range_name    = var.secondary_range_names.pods
    ip_cidr_range = cidrsubnet(var.network.cidr, 1, 1)
  }

  secondary_ip_range {
    range_name    = var.secondary_range_names.services
    ip_cidr_range = cidrsubnet(var.network.cidr, 4, 1)
  }

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Explicit default-deny for ingress (the implied rule, made visible and logged); GKE adds
# its own higher-priority rules for control plane to node traffic.
resource "google_compute_firewall" "deny_ingress" {
  count = local.create_network ? 1 : 0

  project   = local.project
  name      = "${var.name}-deny-ingress"
  network   = google_compute_network.this[0].id
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "this" {
  count = local.create_network ? 1 : 0

  project = local.project
  name    = var.name
  region  = var.region
  network = google_compute_network.this[0].id
}

resource "google_compute_router_nat" "this" {
  count = local.create_network ? 1 : 0

  project                            = local.project
  name                               = var.name
  router                             = google_compute_router.this[0].name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# ---------------------------------------------------------------------------------------
# Node service account: what the node VMs (ours and auto-provisioned) run as, instead of
# the Compute Engine default account with Editor.
# ---------------------------------------------------------------------------------------

resource "google_service_account" "nodes" {
  project      = local.project
  account_id   = local.node_account_id
  display_name = "Meridian ${var.name} GKE nodes"
}

resource "google_project_iam_member" "nodes" {
  project = local.project
  role    = "roles/container.defaultNodeServiceAccount"
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

# ---------------------------------------------------------------------------------------
# Cluster: Standard (not Autopilot), so the fleet's node pools exist for Meridian's GKE
# adapter to resize; see README.
# ---------------------------------------------------------------------------------------

resource "google_container_cluster" "this" {
  project             = local.project
  name                = var.name
  location            = var.region
  node_locations      = length(var.zones) > 0 ? var.zones : null
  network             = local.network
  subnetwork          = local.subnetwork
  networking_mode     = "VPC_NATIVE"
  deletion_protection = var.deletion_protection
  resource_labels     = local.resource_labels

  # Node pools are separate resources, so pools change without replacing the cluster.
  remove_default_node_pool = true
  initial_node_count       = 1

  # The pinned version, off release channels, so the minor version changes only here
  # (GKE still upgrades a minor version at its end of support).
  min_master_version = var.kubernetes_version
  release_channel {
    channel = "UNSPECIFIED"
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = var.secondary_range_names.pods
    services_secondary_range_name = var.secondary_range_names.services
  }

  # Private nodes: no external IPs; egress through Cloud NAT.
  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = var.api_private_only
    master_ipv4_cidr_block  = var.master_cidr
  }

  dynamic "master_authorized_networks_config" {
    for_each = length(var.api_allowed_cidrs) > 0 ? [1] : []
    content {
      dynamic "cidr_blocks" {
        for_each = var.api_allowed_cidrs
        content {
          cidr_block   = cidr_blocks.value
          display_name = "operators-${cidr_blocks.key}"
        }
      }
    }
  }

  workload_identity_config {
    workload_pool = "${local.project}.svc.id.goog"
  }

  # Dataplane V2 enforces the NetworkPolicy that infra/k8s ships.
  datapath_provider           = "ADVANCED_DATAPATH"
  enable_intranode_visibility = true
  enable_shielded_nodes       = true

  # Enforce the project's Binary Authorization policy (allow-all until the operator
  # tightens it, e.g. to signed Meridian images).
  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "APISERVER", "CONTROLLER_MANAGER", "SCHEDULER", "WORKLOADS"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
  }

  dynamic "database_encryption" {
    for_each = var.database_encryption_key == null ? [] : [var.database_encryption_key]
    content {
      state    = "ENCRYPTED"
      key_name = database_encryption.value
    }
  }

  # Node auto-provisioning: the cluster autoscaler may create node pools for pending pods
  # that no fleet pool fits, within these ceilings. The meridian-burst compute class
  # (serverless output) is what asks for it.
  cluster_autoscaling {
    enabled             = var.serverless.enabled
    autoscaling_profile = "BALANCED"

    dynamic "resource_limits" {
      for_each = var.serverless.enabled ? { cpu = var.burst_limits.cpu, memory = var.burst_limits.memory_gb } : {}
      content {
        resource_type = resource_limits.key
        maximum       = resource_limits.value
      }
    }

    dynamic "auto_provisioning_defaults" {
      for_each = var.serverless.enabled ? [1] : []
      content {
        service_account = google_service_account.nodes.email
        oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
        image_type      = "COS_CONTAINERD"

        management {
          auto_repair  = true
          auto_upgrade = true
        }

        shielded_instance_config {
          enable_secure_boot          = true
          enable_integrity_monitoring = true
        }
      }
    }
  }
}

# ---------------------------------------------------------------------------------------
# Node pools: one per fleet pool, named after it; bounds are totals over the zones (the
# GKE adapter sets total_min/total_max_node_count too).
# ---------------------------------------------------------------------------------------

resource "google_container_node_pool" "this" {
  for_each = local.pools

  project            = local.project
  name               = each.key
  cluster            = google_container_cluster.this.id
  location           = var.region
  initial_node_count = ceil(each.value.desired_size / local.zone_count)

  autoscaling {
    total_min_node_count = each.value.min_size
    total_max_node_count = each.value.max_size
    location_policy      = "BALANCED"
  }

  management {
    auto_repair  = true
    auto_upgrade = true # nodes follow the pinned control plane
  }

  node_config {
    machine_type    = each.value.machine_type
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    labels          = merge(local.region_label, { "meridian.io/node-pool" = each.key })
    resource_labels = merge(local.resource_labels, { "meridian-node-pool" = each.key })
    metadata        = { "disable-legacy-endpoints" = "true" }

    # Pods see the GKE metadata server (Workload Identity), never the node's account.
    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }

  lifecycle {
    # The starting size only: the cluster autoscaler and Meridian's control loop resize
    # the pool at run time, and changing initial_node_count would recreate it.
    ignore_changes = [initial_node_count, node_count]
  }
}

# ---------------------------------------------------------------------------------------
# Unit worker identity: a Google service account that only the Kubernetes ServiceAccount
# meridian-unit in var.meridian_namespace may impersonate (Workload Identity), holding
# custom roles with exactly the permissions meridian/nodepools/gke.py needs.
# ---------------------------------------------------------------------------------------

resource "google_service_account" "unit_worker" {
  project      = local.project
  account_id   = local.unit_account_id
  display_name = "Meridian ${var.name} unit worker (node pools)"
}

resource "google_service_account_iam_member" "unit_worker_workload_identity" {
  service_account_id = google_service_account.unit_worker.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.project}.svc.id.goog[${var.meridian_namespace}/meridian-unit]"
}

# get_node_pool needs container.clusters.get; set_node_pool_size and
# set_node_pool_autoscaling need container.clusters.update. GKE grants these per project
# only (no per-cluster IAM), so the project is the boundary: one project per region.
resource "google_project_iam_custom_role" "node_pools" {
  project     = local.project
  role_id     = "meridian_node_pools_${local.role_suffix}"
  title       = "Meridian node pools (${var.name})"
  description = "Read and resize GKE node pools (get, setSize, setAutoscaling)."
  permissions = ["container.clusters.get", "container.clusters.update"]
}

# The pools' managed instance groups: get + listManagedInstances read nodes,
# deleteInstances removes chosen nodes.
resource "google_project_iam_custom_role" "instance_groups" {
  project     = local.project
  role_id     = "meridian_instance_groups_${local.role_suffix}"
  title       = "Meridian node instance groups (${var.name})"
  description = "List and delete instances of GKE node pool instance groups."
  permissions = ["compute.instanceGroupManagers.get", "compute.instanceGroupManagers.update"]
}

resource "google_project_iam_member" "unit_worker_node_pools" {
  project = local.project
  role    = google_project_iam_custom_role.node_pools.name
  member  = "serviceAccount:${google_service_account.unit_worker.email}"
}

resource "google_project_iam_member" "unit_worker_instance_groups" {
  project = local.project
  role    = google_project_iam_custom_role.instance_groups.name
  member  = "serviceAccount:${google_service_account.unit_worker.email}"

  # Compute Engine supports resource conditions: only instance groups in this region's
  # zones (GKE names them gke-<cluster>-<pool>-...; the prefix is truncated, so the zone
  # is the reliable part).
  condition {
    title       = "meridian-${var.name}-zones"
    description = "Instance groups in ${var.region} only"
    expression  = "resource.type == \"compute.googleapis.com/InstanceGroupManager\" && resource.name.startsWith(\"projects/${local.project}/zones/${var.region}-\")"
  }
}
