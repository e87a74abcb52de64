# Common outputs (the same names in every Meridian cluster module).

output "cluster_name" {
  description = "The ACK cluster's name (the Meridian region name)."
  value       = alicloud_cs_managed_kubernetes.this.name
}

output "cluster_endpoint" {
  description = "The API server URL on the VPC (intranet SLB)."
  value       = alicloud_cs_managed_kubernetes.this.connections["api_server_intranet"]
}

output "cluster_ca_certificate" {
  description = "The cluster CA certificate, base64-encoded PEM."
  value       = data.alicloud_cs_cluster_credential.this.certificate_authority["cluster_cert"]
}

output "node_pool_ids" {
  description = "Fleet pool name => ACK node pool id (the adapter's nodepool_id)."
  value       = { for name, pool in alicloud_cs_kubernetes_node_pool.this : name => pool.node_pool_id }
}

output "unit_worker_identity" {
  description = "The RRSA binding for the meridian-unit ServiceAccount: annotate it and label its namespace as given."
  value = {
    kind            = "rrsa"
    role_name       = alicloud_ram_role.unit_worker.role_name
    role_arn        = alicloud_ram_role.unit_worker.arn
    oidc_provider   = local.rrsa.ram_oidc_provider_arn
    service_account = { namespace = var.meridian_namespace, name = local.unit_sa }
    service_account_annotations = {
      "pod-identity.alibabacloud.com/role-name" = alicloud_ram_role.unit_worker.role_name
    }
    namespace_labels = { "pod-identity.alibabacloud.com/injection" = "on" }
  }
}

output "serverless" {
  description = "The ack-virtual-node add-on (ECI virtual nodes), or null when serverless is off."
  value = var.serverless.enabled ? {
    kind             = "ack-virtual-node"
    addon_id         = alicloud_cs_kubernetes_addon.virtual_node[0].id
    namespace_labels = { "alibabacloud.com/eci" = "true" }
  } : null
}

# Alibaba Cloud specific outputs.

output "cluster_id" {
  description = "The ACK cluster id: the adapter's cluster_id (with alibaba_region = var.region)."
  value       = alicloud_cs_managed_kubernetes.this.id
}

output "vpc_id" {
  description = "The cluster's VPC."
  value       = local.vpc_id
}
