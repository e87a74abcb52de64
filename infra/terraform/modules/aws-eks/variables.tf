# ---------------------------------------------------------------------------------------
# Common inputs: the same names and types in every Meridian cloud module.
# ---------------------------------------------------------------------------------------

variable "name" {
  description = "The Meridian region name (e.g. \"aws-us-west-2\"). It names the EKS cluster and every resource here, and is the value of the meridian.io/region label."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name))
    error_message = "name must be 2-40 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "region" {
  description = "The AWS region of the cluster (e.g. \"us-west-2\"). It must match the region of the aws provider passed to this module."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region code such as \"us-west-2\"."
  }
}

variable "kubernetes_version" {
  description = "The pinned Kubernetes minor version (e.g. \"1.31\") of the control plane and every node group."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as \"1.31\"."
  }
}

variable "node_pools" {
  description = "The fleet file's node pools: one EKS managed node group each, named after the pool (the EKS adapter's default nodegroup id)."
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
    condition     = alltrue([for p in var.node_pools : can(regex("^[a-z][a-z0-9-]{0,62}$", p.name))])
    error_message = "node pool names must be lowercase letters, digits or hyphens, starting with a letter, at most 63 characters."
  }

  validation {
    condition = alltrue([
      for p in var.node_pools :
      p.min_size >= 0 && p.min_size <= p.desired_size && p.desired_size <= p.max_size && p.max_size >= 1
    ])
    error_message = "every node pool needs 0 <= min_size <= desired_size <= max_size and max_size >= 1."
  }
}

variable "network" {
  description = "Existing network ids (vpc_id plus private subnet_ids in at least two availability zones), or a CIDR from which a VPC with private and public subnets is created."
  type = object({
    vpc_id     = optional(string)
    subnet_ids = optional(list(string), [])
    cidr       = optional(string, "10.0.0.0/16")
  })
  default = {}

  validation {
    condition     = can(cidrnetmask(var.network.cidr)) && tonumber(split("/", var.network.cidr)[1]) <= 20
    error_message = "network.cidr must be an IPv4 CIDR of /20 or larger (it is split into /24+ subnets over three zones)."
  }

  validation {
    condition     = var.network.vpc_id == null || length(var.network.subnet_ids) >= 2
    error_message = "with an existing network.vpc_id, give at least two private network.subnet_ids in different availability zones."
  }
}

variable "serverless" {
  description = "Serverless pod capacity: an EKS Fargate profile on the task namespaces (for pods labelled meridian.io/capacity=serverless)."
  type = object({
    enabled = optional(bool, true)
  })
  default = {}
}

variable "task_namespaces" {
  description = "Namespaces where Meridian's task Jobs run; the Fargate profile selects burst pods in them."
  type        = list(string)
  default     = ["meridian-tasks"]

  validation {
    condition     = length(var.task_namespaces) >= 1 && length(var.task_namespaces) <= 5
    error_message = "task_namespaces must hold 1 to 5 namespaces (an EKS Fargate profile takes at most five selectors)."
  }

  validation {
    condition     = alltrue([for ns in var.task_namespaces : can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", ns))])
    error_message = "task_namespaces must be Kubernetes namespace names (DNS-1123 labels)."
  }
}

variable "meridian_namespace" {
  description = "Namespace of the unit worker; its ServiceAccount meridian-unit is the only subject allowed to assume the node-pool role."
  type        = string
  default     = "meridian"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.meridian_namespace))
    error_message = "meridian_namespace must be a Kubernetes namespace name (DNS-1123 label)."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------
# EKS-specific inputs, all optional.
# ---------------------------------------------------------------------------------------

variable "api_private_only" {
  description = "Serve the Kubernetes API on the private endpoint only. Operators then run kubectl and `meridian deploy` from inside the VPC (VPN, bastion or peered network)."
  type        = bool
  default     = false
}

variable "api_allowed_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint (operators' and CI egress ranges). Empty keeps the EKS default, which is open to the internet (authentication still applies)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.api_allowed_cidrs : can(cidrnetmask(c))])
    error_message = "api_allowed_cidrs must be IPv4 CIDRs."
  }
}

variable "log_retention_days" {
  description = "Retention of the control-plane log group (api, audit, authenticator, controllerManager, scheduler)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value (e.g. 30, 90, 365)."
  }
}
