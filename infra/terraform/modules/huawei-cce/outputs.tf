# Common outputs (the same names in every Meridian cluster module).

locals {
  # CCE lists one kubeconfig cluster entry per endpoint; the VPC one is "internalCluster".
  internal_clusters = [for c in huaweicloud_cce_cluster.this.certificate_clusters : c if strcontains(lower(c.name), "internal")]
  api_cluster       = length(local.internal_clusters) > 0 ? local.internal_clusters[0] : huaweicloud_cce_cluster.this.certificate_clusters[0]
}

output "cluster_name" {
  description = "The CCE cluster's name (the Meridian region name)."
  value       = huaweicloud_cce_cluster.this.name
}

output "cluster_endpoint" {
  description = "The API server URL on the VPC."
  value       = local.api_cluster.server
}

output "cluster_ca_certificate" {
  description = "The cluster CA certificate, base64-encoded PEM (as in a kubeconfig)."
  value       = local.api_cluster.certificate_authority_data
}

output "node_pool_ids" {
  description = "Fleet pool name => CCE node pool id (the adapter's nodepool_id)."
  value       = { for name, pool in huaweicloud_cce_node_pool.this : name => pool.id }
}

output "unit_worker_identity" {
  description = "The pod-identity binding of the meridian-unit ServiceAccount (made by this module; nothing to annotate)."
  value = {
    kind                        = "cce-pod-identity"
    agency_name                 = huaweicloud_identity_agency.unit_worker.name
    association_id              = huaweicloud_cce_cluster_pod_identity_association.unit_worker.id
    service_account             = { namespace = var.meridian_namespace, name = local.unit_sa }
    service_account_annotations = {}
  }
}

output "serverless" {
  description = "The CCE Cloud Bursting Engine for CCI add-on, or null when serverless is off."
  value = var.serverless.enabled ? {
    kind     = "cce-cci-bursting"
    addon_id = huaweicloud_cce_addon.bursting[0].id
    template = "virtual-kubelet"
  } : null
}

# Huawei Cloud specific outputs.

output "cluster_id" {
  description = "The CCE cluster id: the adapter's cluster_id (with huawei_region = var.region)."
  value       = huaweicloud_cce_cluster.this.id
}

output "vpc_id" {
  description = "The cluster's VPC."
  value       = local.vpc_id
}
