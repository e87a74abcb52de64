# ---------------------------------------------------------------------------------------
# Common inputs: the same names and types in every Meridian cloud module.
# ---------------------------------------------------------------------------------------

variable "name" {
  description = "The Meridian region name (e.g. \"azure-eastus\"). It names the AKS cluster and every resource here, and is the value of the meridian.io/region label."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name))
    error_message = "name must be 2-40 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "region" {
  description = "The Azure location of the cluster (e.g. \"eastus\")."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]+$", var.region))
    error_message = "region must be an Azure location name such as \"eastus\" or \"westeurope\"."
  }
}

variable "kubernetes_version" {
  description = "The pinned Kubernetes minor version (e.g. \"1.31\") of the control plane and every node pool; AKS picks the latest patch of it."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as \"1.31\"."
  }
}

variable "node_pools" {
  description = "The fleet file's node pools: one AKS user agent pool each, named after the pool (the AKS adapter's default agent_pool)."
  type = list(object({
    name         = string
    machine_type = string
    min_size     = number
    desired_size = number
    max_size     = number
  }))

  validation {
    condition     = length(var.node_pools) > 0
    error_message = "node_pools must hold at least one pool."
  }

  validation {
    condition     = length(distinct([for p in var.node_pools : p.name])) == length(var.node_pools)
    error_message = "node pool names must be unique."
  }

  validation {
    # AKS agent pool names: lowercase alphanumeric, 1-12 characters, for Linux pools.
    condition     = alltrue([for p in var.node_pools : can(regex("^[a-z][a-z0-9]{0,11}$", p.name)) && p.name != "meridiansys"])
    error_message = "node pool names must be 1-12 lowercase letters or digits starting with a letter (an AKS rule), and not \"meridiansys\" (the system pool)."
  }

  validation {
    condition = alltrue([
      for p in var.node_pools :
      p.min_size >= 0 && p.min_size <= p.desired_size && p.desired_size <= p.max_size && p.max_size >= 1 && p.max_size <= 1000
    ])
    error_message = "every node pool needs 0 <= min_size <= desired_size <= max_size, and 1 <= max_size <= 1000."
  }
}

variable "network" {
  description = "Existing network ids (vpc_id = the VNet id; subnet_ids[0] = the node subnet, subnet_ids[1] = the subnet delegated to Azure Container Instances for virtual nodes), or a CIDR from which a VNet with both subnets is created."
  type = object({
    vpc_id     = optional(string)
    subnet_ids = optional(list(string), [])
    cidr       = optional(string, "10.0.0.0/16")
  })
  default = {}

  validation {
    condition     = can(cidrnetmask(var.network.cidr)) && tonumber(split("/", var.network.cidr)[1]) <= 20
    error_message = "network.cidr must be an IPv4 CIDR of /20 or larger."
  }

  validation {
    condition     = var.network.vpc_id == null || length(var.network.subnet_ids) >= 1
    error_message = "with an existing network.vpc_id, give the node subnet id (and the virtual-node subnet id second) in network.subnet_ids."
  }
}

variable "serverless" {
  description = "Serverless pod capacity: AKS virtual nodes (the ACI connector add-on) in a delegated subnet."
  type = object({
    enabled = optional(bool, true)
  })
  default = {}
}

variable "task_namespaces" {
  description = "Namespaces where Meridian's task Jobs run (reported in the serverless output; virtual nodes themselves are cluster-wide)."
  type        = list(string)
  default     = ["meridian-tasks"]

  validation {
    condition     = length(var.task_namespaces) >= 1 && alltrue([for ns in var.task_namespaces : can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", ns))])
    error_message = "task_namespaces must hold at least one Kubernetes namespace name (DNS-1123 label)."
  }
}

variable "meridian_namespace" {
  description = "Namespace of the unit worker; its ServiceAccount meridian-unit is the only subject federated with the node-pool identity."
  type        = string
  default     = "meridian"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.meridian_namespace))
    error_message = "meridian_namespace must be a Kubernetes namespace name (DNS-1123 label)."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags (Azure tag names may not contain '/', so Meridian's own tags are meridian-region and meridian-node-pool)."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------
# AKS-specific inputs, all optional.
# ---------------------------------------------------------------------------------------

variable "resource_group_name" {
  description = "An existing resource group to create everything in; null creates \"<name>-rg\"."
  type        = string
  default     = null
}

variable "api_private_only" {
  description = "Make the cluster private: the API server gets only a private IP in the VNet, and operators run kubectl and `meridian deploy` from inside it."
  type        = bool
  default     = false
}

variable "api_allowed_cidrs" {
  description = "CIDRs allowed to reach the public API server (operators' and CI egress ranges). Empty leaves it open to the internet (Entra ID authentication still applies). Azure documents that virtual nodes do not support authorized IP ranges."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.api_allowed_cidrs : can(cidrnetmask(c))])
    error_message = "api_allowed_cidrs must be IPv4 CIDRs."
  }
}

variable "admin_group_object_ids" {
  description = "Entra ID group object ids that are cluster admins (local accounts are disabled, so someone must be)."
  type        = list(string)
  default     = []
}

variable "system_vm_size" {
  description = "VM size of the small system pool (meridiansys) that runs only critical add-ons; Meridian never resizes it."
  type        = string
  default     = "Standard_D4s_v5"
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace that receives control-plane logs and Container Insights."
  type        = number
  default     = 90

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be between 30 and 730."
  }
}

variable "service_cidr" {
  description = "The Kubernetes Service range; it must not overlap the VNet or networks peered with it. The DNS service takes its tenth address."
  type        = string
  default     = "172.16.0.0/16"

  validation {
    condition     = can(cidrhost(var.service_cidr, 10))
    error_message = "service_cidr must be an IPv4 CIDR with at least 16 addresses."
  }
}

variable "host_encryption_enabled" {
  description = "Encrypt node temp disks, caches and OS/data disk flows at the VM host. Needs the subscription feature Microsoft.Compute/EncryptionAtHost registered once (az feature register --namespace Microsoft.Compute --name EncryptionAtHost)."
  type        = bool
  default     = true
}
