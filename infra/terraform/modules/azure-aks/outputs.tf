# Common outputs: the same names in every Meridian cloud module.

output "cluster_name" {
  description = "The AKS cluster's name (the adapter's `cluster`)."
  value       = azurerm_kubernetes_cluster.this.name
}

output "cluster_endpoint" {
  description = "The Kubernetes API server URL (the private FQDN for a private cluster)."
  value       = "https://${var.api_private_only ? azurerm_kubernetes_cluster.this.private_fqdn : azurerm_kubernetes_cluster.this.fqdn}:443"
}

output "cluster_ca_certificate" {
  description = "The cluster CA, base64-encoded PEM (kubeconfig certificate-authority-data)."
  # The provider marks the whole kube_config block sensitive because it can hold client
  # keys; the CA certificate in it is public, and the fleet root aggregates it.
  value = nonsensitive(azurerm_kubernetes_cluster.this.kube_config[0].cluster_ca_certificate)
}

output "node_pool_ids" {
  description = "Fleet pool name => AKS agent pool name (the AKS adapter's `agent_pool`)."
  value       = { for name, pool in azurerm_kubernetes_cluster_node_pool.this : name => pool.name }
}

output "unit_worker_identity" {
  description = "Workload identity: annotate the meridian-unit ServiceAccount with service_account_annotations and label the unit worker's pods with pod_labels."
  value = {
    kind            = "azure-workload-identity"
    service_account = "${var.meridian_namespace}/meridian-unit"
    client_id       = azurerm_user_assigned_identity.unit_worker.client_id
    principal_id    = azurerm_user_assigned_identity.unit_worker.principal_id
    tenant_id       = azurerm_user_assigned_identity.unit_worker.tenant_id
    service_account_annotations = {
      "azure.workload.identity/client-id" = azurerm_user_assigned_identity.unit_worker.client_id
    }
    pod_labels = { "azure.workload.identity/use" = "true" }
  }
}

output "serverless" {
  description = "Virtual nodes, and how a pod is steered onto them; null when serverless is disabled."
  value = var.serverless.enabled ? {
    kind       = "aks-virtual-nodes"
    id         = local.aci_subnet_id
    namespaces = var.task_namespaces
    pod_labels = {}
    node_selector = {
      "kubernetes.io/role" = "agent"
      "kubernetes.io/os"   = "linux"
      "type"               = "virtual-kubelet"
    }
    tolerations = [
      { key = "virtual-kubelet.io/provider", operator = "Exists" },
      { key = "azure.com/aci", effect = "NoSchedule" },
    ]
  } : null
}

# AKS-specific: the node-pool adapter config per pool, as meridian/nodepools/aks.py reads it.
output "node_pool_config" {
  description = "Fleet pool name => the `aks` driver's config (subscription_id, resource_group, cluster, agent_pool, min, max)."
  value = {
    for name, pool in azurerm_kubernetes_cluster_node_pool.this : name => {
      driver          = "aks"
      subscription_id = data.azurerm_client_config.current.subscription_id
      resource_group  = local.resource_group_name
      cluster         = azurerm_kubernetes_cluster.this.name
      agent_pool      = pool.name
      min             = local.pools[name].min_size
      max             = local.pools[name].max_size
    }
  }
}

output "oidc_issuer_url" {
  description = "The cluster's OIDC issuer, for further federated credentials."
  value       = azurerm_kubernetes_cluster.this.oidc_issuer_url
}
