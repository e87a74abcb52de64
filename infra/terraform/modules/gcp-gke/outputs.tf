# Common outputs: the same names in every Meridian cloud module.

output "cluster_name" {
  description = "The GKE cluster's name (the adapter's `cluster`)."
  value       = google_container_cluster.this.name
}

output "cluster_endpoint" {
  description = "The Kubernetes API server URL."
  value       = "https://${google_container_cluster.this.endpoint}"
}

output "cluster_ca_certificate" {
  description = "The cluster CA, base64-encoded PEM (kubeconfig certificate-authority-data)."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
}

output "node_pool_ids" {
  description = "Fleet pool name => GKE node pool name (the GKE adapter's `node_pool`)."
  value       = { for name, pool in google_container_node_pool.this : name => pool.name }
}

output "unit_worker_identity" {
  description = "Workload Identity: annotate the meridian-unit ServiceAccount with service_account_annotations."
  value = {
    kind                   = "gcp-workload-identity"
    service_account        = "${var.meridian_namespace}/meridian-unit"
    google_service_account = google_service_account.unit_worker.email
    service_account_annotations = {
      "iam.gke.io/gcp-service-account" = google_service_account.unit_worker.email
    }
    pod_labels = {}
  }
}

output "serverless" {
  description = "Node auto-provisioning behind the meridian-burst compute class, and how a pod selects it; null when serverless is disabled. Apply `compute_class_manifest` to the cluster (infra/k8s does)."
  value = var.serverless.enabled ? {
    kind          = "gke-compute-class"
    id            = local.burst_class
    namespaces    = var.task_namespaces
    pod_labels    = {}
    node_selector = { "cloud.google.com/compute-class" = local.burst_class }
    tolerations   = []
    compute_class_manifest = yamlencode({
      apiVersion = "cloud.google.com/v1"
      kind       = "ComputeClass"
      metadata   = { name = local.burst_class }
      spec = {
        # Spot first (cheapest for short bursts), then on-demand when Spot is out; N2 is
        # offered in every region.
        priorities           = [{ machineFamily = "n2", spot = true }, { machineFamily = "n2", spot = false }]
        nodePoolAutoCreation = { enabled = true }
        whenUnsatisfiable    = "ScaleUpAnyway"
      }
    })
  } : null
}

# GKE-specific: the node-pool adapter config per pool, as meridian/nodepools/gke.py reads it.
output "node_pool_config" {
  description = "Fleet pool name => the `gke` driver's config (project, location, cluster, node_pool, min, max)."
  value = {
    for name, pool in google_container_node_pool.this : name => {
      driver    = "gke"
      project   = local.project
      location  = var.region
      cluster   = google_container_cluster.this.name
      node_pool = pool.name
      min       = local.pools[name].min_size
      max       = local.pools[name].max_size
    }
  }
}
