# Common outputs (the same names in every Meridian cluster module).

output "cluster_name" {
  description = "The TKE cluster's name (the Meridian region name)."
  value       = tencentcloud_kubernetes_cluster.this.cluster_name
}

output "cluster_endpoint" {
  description = "The API server URL on the VPC (intranet CLB)."
  value       = "https://${tencentcloud_kubernetes_cluster_endpoint.this.pgw_endpoint}"
}

output "cluster_ca_certificate" {
  description = "The cluster CA certificate, base64-encoded PEM (TKE returns the PEM itself)."
  value       = base64encode(tencentcloud_kubernetes_cluster_endpoint.this.certification_authority)
}

output "node_pool_ids" {
  description = "Fleet pool name => TKE node pool id (the adapter's node_pool_id); the resource id is <cluster>#<pool>."
  value       = { for name, pool in tencentcloud_kubernetes_node_pool.this : name => split("#", pool.id)[1] }
}

output "unit_worker_identity" {
  description = "The pod-identity binding for the meridian-unit ServiceAccount: annotate it as given."
  value = {
    kind            = "tke-pod-identity"
    role_name       = tencentcloud_cam_role.unit_worker.name
    role_arn        = tencentcloud_cam_role.unit_worker.role_arn
    oidc_provider   = tencentcloud_kubernetes_cluster.this.id
    service_account = { namespace = var.meridian_namespace, name = local.unit_sa }
    service_account_annotations = {
      "tke.cloud.tencent.com/role-arn" = tencentcloud_cam_role.unit_worker.role_arn
      "tke.cloud.tencent.com/audience" = local.sts_audience
    }
  }
}

output "serverless" {
  description = "The super node pool, or null when serverless is off."
  value = var.serverless.enabled ? {
    kind                = "tke-super-node-pool"
    node_pool_id        = split("#", tencentcloud_kubernetes_serverless_node_pool.this[0].id)[1]
    node_selector       = { "meridian.io/serverless" = "true" }
    toleration          = { key = "meridian.io/serverless", operator = "Equal", value = "true", effect = "NoSchedule" }
    namespaces_intended = var.task_namespaces
  } : null
}

# Tencent Cloud specific outputs.

output "cluster_id" {
  description = "The TKE cluster id: the adapter's cluster_id (with tencent_region = var.region)."
  value       = tencentcloud_kubernetes_cluster.this.id
}

output "vpc_id" {
  description = "The cluster's VPC."
  value       = local.vpc_id
}
