# Common inputs: the same names and types in every Meridian cluster module
# (see infra/terraform/modules/*/variables.tf); the fleet root sets only these.

variable "name" {
  description = "The Meridian region name, e.g. \"huawei-cn-north-4\". It names the cluster and is the value of the meridian.io/region node label."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", var.name))
    error_message = "name must be a lower-case DNS label of at most 40 characters (letters, digits, hyphens)."
  }
}

variable "region" {
  description = "The cloud region the cluster runs in, e.g. \"cn-north-4\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.region))
    error_message = "region must be a cloud region id such as cn-north-4."
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

# Huawei Cloud specific inputs; every one has a default so the fleet root needs none.

variable "cloud_autoscaler" {
  description = "Hand the pools to CCE's autoscaler add-on (scall_enable). Off by default: Meridian's scaling loop owns the pool size between min and max and leaves pools alone whose own autoscaler is on."
  type        = bool
  default     = false
}

variable "cluster_flavor" {
  description = "CCE cluster flavor; the default is a highly available control plane for up to 50 nodes."
  type        = string
  default     = "cce.s2.small"

  validation {
    condition     = startswith(var.cluster_flavor, "cce.")
    error_message = "cluster_flavor must be a CCE flavor such as cce.s2.small."
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

variable "pod_cidr" {
  description = "Container (pod) CIDR of the VPC network model; must not overlap the VPC or service CIDR."
  type        = string
  default     = "172.20.0.0/16"

  validation {
    condition     = can(cidrhost(var.pod_cidr, 0))
    error_message = "pod_cidr must be a valid IPv4 CIDR."
  }
}

variable "service_cidr" {
  description = "Kubernetes Service CIDR; must not overlap the VPC or pod CIDR."
  type        = string
  default     = "172.21.0.0/16"

  validation {
    condition     = can(cidrhost(var.service_cidr, 0))
    error_message = "service_cidr must be a valid IPv4 CIDR."
  }
}

variable "dns_servers" {
  description = "DNS servers of created subnets (CCE nodes need the region's private DNS to install); the defaults are Huawei Cloud's private DNS for the cn-north regions."
  type        = list(string)
  default     = ["100.125.1.250", "100.125.21.250"]

  validation {
    condition     = length(var.dns_servers) >= 1 && length(var.dns_servers) <= 2
    error_message = "dns_servers takes one or two addresses."
  }
}

variable "node_os" {
  description = "Operating system of the pool nodes."
  type        = string
  default     = "Huawei Cloud EulerOS 2.0"
}

variable "key_pair" {
  description = "ECS key pair for node login."
  type        = string
  default     = null
}

variable "bursting_addon_version" {
  description = "Version of the CCE Cloud Bursting Engine for CCI add-on (template virtual-kubelet); null installs the version CCE offers by default."
  type        = string
  default     = null
}
