# Common inputs: the same names and types in every Meridian cluster module
# (see infra/terraform/modules/*/variables.tf); the fleet root sets only these.

variable "name" {
  description = "The Meridian region name, e.g. \"baidu-bj\". It names the cluster and is the value of the meridian.io/region node label."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", var.name))
    error_message = "name must be a lower-case DNS label of at most 40 characters (letters, digits, hyphens)."
  }
}

variable "region" {
  description = "The cloud region the cluster runs in, e.g. \"bj\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.region))
    error_message = "region must be a cloud region id such as bj."
  }
}

variable "kubernetes_version" {
  description = "The pinned Kubernetes minor version, e.g. \"1.31\" (a patch such as \"1.31.1\" pins further)."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]+(\\.[0-9]+)?$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.31 or 1.31.1."
  }
}

variable "node_pools" {
  description = "The fleet file's node pools of this region: one cloud node pool each, named as in the fleet file."
  type = list(object({
    name         = string
    machine_type = string
    min_size     = number
    desired_size = number
    max_size     = number
  }))

  validation {
    condition     = length(var.node_pools) > 0
    error_message = "node_pools needs at least one pool."
  }

  validation {
    condition     = alltrue([for p in var.node_pools : p.min_size >= 0 && p.min_size <= p.desired_size && p.desired_size <= p.max_size && p.max_size > 0])
    error_message = "Every pool needs 0 <= min_size <= desired_size <= max_size and max_size > 0."
  }

  validation {
    condition     = length(distinct([for p in var.node_pools : p.name])) == length(var.node_pools)
    error_message = "Node pool names must be unique."
  }

  validation {
    condition     = alltrue([for p in var.node_pools : can(regex("^[a-z0-9]([a-z0-9-]{0,23}[a-z0-9])?$", p.name))])
    error_message = "Node pool names must be lower-case DNS labels of at most 25 characters (they are Kubernetes label values and cloud pool names)."
  }
}

variable "network" {
  description = "Existing network ids (vpc_id with subnet_ids), or a CIDR to create the network from when vpc_id is null."
  type = object({
    vpc_id     = optional(string)
    subnet_ids = optional(list(string), [])
    cidr       = optional(string, "10.0.0.0/16")
  })
  default = {}

  validation {
    condition     = var.network.vpc_id != null || can(cidrhost(var.network.cidr, 0))
    error_message = "network.cidr must be a valid IPv4 CIDR when no vpc_id is given."
  }

  validation {
    condition     = var.network.vpc_id == null || length(var.network.subnet_ids) > 0
    error_message = "An existing network (vpc_id) needs its subnet_ids too."
  }
}

variable "serverless" {
  description = "Serverless pod capacity for the cluster (see the module README for what it is on this cloud)."
  type = object({
    enabled = optional(bool, true)
  })
  default = {}
}

variable "task_namespaces" {
  description = "Namespaces where Meridian's task Jobs run."
  type        = list(string)
  default     = ["meridian-tasks"]

  validation {
    condition     = length(var.task_namespaces) > 0 && alltrue([for ns in var.task_namespaces : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", ns))])
    error_message = "task_namespaces must be one or more Kubernetes namespace names."
  }
}

variable "meridian_namespace" {
  description = "Namespace of Meridian's unit worker (its ServiceAccount is meridian-unit)."
  type        = string
  default     = "meridian"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.meridian_namespace))
    error_message = "meridian_namespace must be a Kubernetes namespace name."
  }
}

variable "tags" {
  description = "Cloud tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

# Baidu AI Cloud specific inputs; every one has a default so the fleet root needs none.

variable "cce_version" {
  description = "The exact CCE Kubernetes version (e.g. \"1.30.1\"); null derives it from kubernetes_version (a patch given there is used as is, a minor maps to the CCE release listed in locals)."
  type        = string
  default     = null

  validation {
    condition     = var.cce_version == null || can(regex("^1\\.[0-9]+\\.[0-9]+$", var.cce_version))
    error_message = "cce_version must look like 1.30.1."
  }
}

variable "zone_count" {
  description = "How many zones (one subnet each) a created network spans."
  type        = number
  default     = 2

  validation {
    condition     = var.zone_count >= 1 && var.zone_count <= 4
    error_message = "zone_count must be between 1 and 4."
  }
}

variable "service_cidr" {
  description = "Kubernetes Service (ClusterIP) CIDR; must not overlap the VPC."
  type        = string
  default     = "172.21.0.0/20"

  validation {
    condition     = can(cidrhost(var.service_cidr, 0))
    error_message = "service_cidr must be a valid IPv4 CIDR."
  }
}

variable "instance_type" {
  description = "CCE instance type family of the node BCCs; the fleet's machine_type (a BCC spec such as bcc.g5.c16m64) picks the size."
  type        = string
  default     = "N5"
}

variable "image_id" {
  description = "BCC image for the nodes; null lets CCE pick its default Linux image."
  type        = string
  default     = null
}

variable "security_group_id" {
  description = "Security group for the nodes; null uses CCE's default."
  type        = string
  default     = null
}

variable "ssh_key_id" {
  description = "BCC key pair for node login; null leaves nodes without key login."
  type        = string
  default     = null
}
