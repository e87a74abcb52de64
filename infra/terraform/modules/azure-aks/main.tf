# Meridian region on Azure: VNet (or existing subnets), an AKS cluster with workload
# identity, one user agent pool per fleet pool, virtual nodes (ACI connector) for burst
# pods, and the unit worker's managed identity limited to its own agent pools.

data "azurerm_client_config" "current" {}

data "azurerm_resource_group" "existing" {
  count = var.resource_group_name == null ? 0 : 1
  name  = var.resource_group_name
}

resource "azurerm_resource_group" "this" {
  count = var.resource_group_name == null ? 1 : 0

  name     = "${var.name}-rg"
  location = var.region
  tags     = local.tags
}

locals {
  create_network = var.network.vpc_id == null

  resource_group_name = var.resource_group_name == null ? azurerm_resource_group.this[0].name : data.azurerm_resource_group.existing[0].name
  resource_group_id   = var.resource_group_name == null ? azurerm_resource_group.this[0].id : data.azurerm_resource_group.existing[0].id

  # Kubernetes node labels use Meridian's keys; Azure tag names cannot contain '/', so
  # the tags carry the same values under meridian-region / meridian-node-pool.
  region_label = { "meridian.io/region" = var.name }
  tags         = merge(var.tags, { "meridian-region" = var.name, "managed-by" = "terraform" })

  pools = { for p in var.node_pools : p.name => p }

  node_subnet_id = local.create_network ? azurerm_subnet.nodes[0].id : var.network.subnet_ids[0]
  aci_subnet_id = (
    local.create_network ? azurerm_subnet.virtual_nodes[0].id
    : (length(var.network.subnet_ids) > 1 ? var.network.subnet_ids[1] : null)
  )
  # The ACI connector takes a subnet *name* in the cluster's VNet; an id ends with it.
  aci_subnet_name = local.aci_subnet_id == null ? null : basename(local.aci_subnet_id)

  unit_subject = "system:serviceaccount:${var.meridian_namespace}:meridian-unit"
}

# ---------------------------------------------------------------------------------------
# Network: a node subnet (Azure CNI: nodes and pods take VNet addresses) and a subnet
# delegated to Azure Container Instances for virtual nodes. Skipped with network.vpc_id.
# ---------------------------------------------------------------------------------------

resource "azurerm_virtual_network" "this" {
  count = local.create_network ? 1 : 0

  name                = "${var.name}-vnet"
  location            = var.region
  resource_group_name = local.resource_group_name
  address_space       = [var.network.cidr]
  tags                = local.tags
}

resource "azurerm_subnet" "nodes" {
  count = local.create_network ? 1 : 0

  name                 = "nodes"
  resource_group_name  = local.resource_group_name
  virtual_network_name = azurerm_virtual_network.this[0].name
  address_prefixes     = [cidrsubnet(var.network.cidr, 2, 0)]
}

resource "azurerm_subnet" "virtual_nodes" {
  count = local.create_network ? 1 : 0

  name                 = "virtual-nodes"
  resource_group_name  = local.resource_group_name
  virtual_network_name = azurerm_virtual_network.this[0].name
  address_prefixes     = [cidrsubnet(var.network.cidr, 2, 1)]

  # AKS adds this delegation itself when it enables the connector; declaring it keeps
  # later plans from removing it.
  delegation {
    name = "aci"
    service_delegation {
      name    = "Microsoft.ContainerInstance/containerGroups"
      actions = ["Microsoft.Network/virtualNetworks/subnets/action"]
    }
  }
}

# AKS puts its own security group on node NICs; this one on the subnets only keeps
# Azure's default rules explicit and gives operators one place to add their own.
resource "azurerm_network_security_group" "this" {
  count = local.create_network ? 1 : 0

  name                = "${var.name}-subnets"
  location            = var.region
  resource_group_name = local.resource_group_name
  tags                = local.tags
}

resource "azurerm_subnet_network_security_group_association" "nodes" {
  count = local.create_network ? 1 : 0

  subnet_id                 = azurerm_subnet.nodes[0].id
  network_security_group_id = azurerm_network_security_group.this[0].id
}

resource "azurerm_subnet_network_security_group_association" "virtual_nodes" {
  count = local.create_network ? 1 : 0

  subnet_id                 = azurerm_subnet.virtual_nodes[0].id
  network_security_group_id = azurerm_network_security_group.this[0].id
}

# ---------------------------------------------------------------------------------------
# Logging: control-plane logs (diagnostic setting) and Container Insights (oms_agent).
# ---------------------------------------------------------------------------------------

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.name}-logs"
  location            = var.region
  resource_group_name = local.resource_group_name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_monitor_diagnostic_setting" "cluster" {
  name                       = "control-plane"
  target_resource_id         = azurerm_kubernetes_cluster.this.id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  dynamic "enabled_log" {
    for_each = toset([
      "kube-apiserver",
      "kube-audit-admin",
      "kube-controller-manager",
      "kube-scheduler",
      "cluster-autoscaler",
      "guard",
    ])
    content {
      category = enabled_log.value
    }
  }
}

# ---------------------------------------------------------------------------------------
# Cluster
# ---------------------------------------------------------------------------------------

resource "azurerm_kubernetes_cluster" "this" {
  name                = var.name
  location            = var.region
  resource_group_name = local.resource_group_name
  dns_prefix          = var.name
  kubernetes_version  = var.kubernetes_version
  sku_tier            = "Standard" # the uptime SLA; Free has none
  tags                = local.tags

  # Patch upgrades only: the minor version stays the pinned one until it is changed here.
  automatic_upgrade_channel = "patch"
  node_os_upgrade_channel   = "NodeImage"

  # Workload identity: the unit worker's ServiceAccount token is exchanged for an Entra
  # ID token of the managed identity below.
  oidc_issuer_enabled       = true
  workload_identity_enabled = true

  private_cluster_enabled = var.api_private_only

  dynamic "api_server_access_profile" {
    for_each = !var.api_private_only && length(var.api_allowed_cidrs) > 0 ? [1] : []
    content {
      authorized_ip_ranges = var.api_allowed_cidrs
    }
  }

  # Entra ID users and groups only: no static client certificate to leak.
  local_account_disabled            = true
  role_based_access_control_enabled = true
  azure_active_directory_role_based_access_control {
    azure_rbac_enabled     = true
    tenant_id              = data.azurerm_client_config.current.tenant_id
    admin_group_object_ids = var.admin_group_object_ids
  }

  azure_policy_enabled = true

  identity {
    type = "SystemAssigned"
  }

  # A small system pool for CoreDNS, konnectivity and the add-ons, tainted
  # CriticalAddonsOnly so task pods land on the fleet's pools. Meridian never resizes it
  # and the unit worker has no permission on it.
  default_node_pool {
    name                         = "meridiansys"
    vm_size                      = var.system_vm_size
    vnet_subnet_id               = local.node_subnet_id
    orchestrator_version         = var.kubernetes_version
    auto_scaling_enabled         = true
    min_count                    = 1
    max_count                    = 3
    node_count                   = 2
    max_pods                     = 110
    host_encryption_enabled      = var.host_encryption_enabled
    only_critical_addons_enabled = true
    temporary_name_for_rotation  = "meridiantmp"
    node_labels                  = local.region_label
    tags                         = local.tags

    upgrade_settings {
      max_surge = "10%"
    }
  }

  # Azure CNI (not overlay): virtual nodes need pods on VNet addresses. Azure network
  # policy enforces the NetworkPolicy that infra/k8s ships.
  network_profile {
    network_plugin    = "azure"
    network_policy    = "azure"
    load_balancer_sku = "standard"
    service_cidr      = var.service_cidr
    dns_service_ip    = cidrhost(var.service_cidr, 10)
  }

  dynamic "aci_connector_linux" {
    for_each = var.serverless.enabled ? [1] : []
    content {
      subnet_name = local.aci_subnet_name
    }
  }

  oms_agent {
    log_analytics_workspace_id      = azurerm_log_analytics_workspace.this.id
    msi_auth_for_monitoring_enabled = true
  }

  key_vault_secrets_provider {
    secret_rotation_enabled = true
  }

  lifecycle {
    # The system pool's size belongs to its own autoscaler.
    ignore_changes = [default_node_pool[0].node_count]

    precondition {
      condition     = !var.serverless.enabled || local.aci_subnet_id != null
      error_message = "serverless.enabled with an existing network needs the virtual-node subnet id as network.subnet_ids[1]."
    }
  }
}

# Azure CNI with a bring-your-own subnet: the cluster identity manages NICs and load
# balancer frontends in it.
resource "azurerm_role_assignment" "cluster_network" {
  scope                = local.node_subnet_id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_kubernetes_cluster.this.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

# ---------------------------------------------------------------------------------------
# Agent pools: one user pool per fleet pool, named after it, autoscaled within its bounds.
# ---------------------------------------------------------------------------------------

resource "azurerm_kubernetes_cluster_node_pool" "this" {
  for_each = local.pools

  name                    = each.key
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.this.id
  mode                    = "User"
  vm_size                 = each.value.machine_type
  vnet_subnet_id          = local.node_subnet_id
  orchestrator_version    = var.kubernetes_version
  auto_scaling_enabled    = true
  min_count               = each.value.min_size
  node_count              = each.value.desired_size
  max_count               = each.value.max_size
  max_pods                = 110
  host_encryption_enabled = var.host_encryption_enabled
  node_labels             = merge(local.region_label, { "meridian.io/node-pool" = each.key })
  tags                    = merge(local.tags, { "meridian-node-pool" = each.key })

  upgrade_settings {
    max_surge = "10%"
  }

  lifecycle {
    # node_count is only the starting size: AKS's cluster autoscaler and Meridian's
    # control loop change it at run time, and a plan must not undo that.
    ignore_changes = [node_count]
  }
}

# ---------------------------------------------------------------------------------------
# Serverless: virtual nodes. The connector's identity joins container groups to the
# delegated subnet.
# ---------------------------------------------------------------------------------------

resource "azurerm_role_assignment" "aci_connector_network" {
  count = var.serverless.enabled ? 1 : 0

  scope                = local.aci_subnet_id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_kubernetes_cluster.this.aci_connector_linux[0].connector_identity[0].object_id
  principal_type       = "ServicePrincipal"
}

# ---------------------------------------------------------------------------------------
# Unit worker identity: a user-assigned managed identity, federated with exactly one
# Kubernetes subject, holding a custom role on this cluster's fleet agent pools only
# (the calls meridian/nodepools/aks.py makes: agent_pools.get / begin_create_or_update,
# machines.list, agent_pools.begin_delete_machines).
# ---------------------------------------------------------------------------------------

resource "azurerm_user_assigned_identity" "unit_worker" {
  name                = "${var.name}-meridian-unit"
  location            = var.region
  resource_group_name = local.resource_group_name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "unit_worker" {
  name                      = "meridian-unit"
  user_assigned_identity_id = azurerm_user_assigned_identity.unit_worker.id
  audience                  = ["api://AzureADTokenExchange"]
  issuer                    = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject                   = local.unit_subject
}

resource "azurerm_role_definition" "node_pools" {
  name        = "Meridian node pools (${var.name})"
  scope       = local.resource_group_id
  description = "Read, resize and remove machines of AKS agent pools; assigned per agent pool."

  permissions {
    actions = [
      "Microsoft.ContainerService/managedClusters/agentPools/read",
      "Microsoft.ContainerService/managedClusters/agentPools/write",
      "Microsoft.ContainerService/managedClusters/agentPools/machines/read",
      "Microsoft.ContainerService/managedClusters/agentPools/deleteMachines/action",
    ]
    not_actions = []
  }

  assignable_scopes = [local.resource_group_id]
}

# One assignment per fleet pool, scoped to that agent pool: not the system pool, not the
# cluster, not the resource group.
resource "azurerm_role_assignment" "unit_worker" {
  for_each = azurerm_kubernetes_cluster_node_pool.this

  scope              = each.value.id
  role_definition_id = azurerm_role_definition.node_pools.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.unit_worker.principal_id
  principal_type     = "ServicePrincipal"
}
