# ---------------------------------------------------------------------------------------
# Common inputs: the same names and types in every Meridian cloud module.
# ---------------------------------------------------------------------------------------

variable "name" {
  description = "The Meridian region name (e.g. \"gcp-us-central1\"). It names the GKE cluster and every resource here, and is the value of the meridian.io/region label."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name))
    error_message = "name must be 2-40 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen (GKE's cluster name rule)."
  }
}

variable "region" {
  description = "The GCP region of the (regional) cluster, e.g. \"us-central1\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as \"us-central1\" or \"asia-southeast1\" (a region, not a zone)."
  }
}

variable "kubernetes_version" {
  description = "The pinned Kubernetes minor version (e.g. \"1.31\"): the control plane's min_master_version; node pools follow the control plane."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as \"1.31\"."
  }
}

variable "node_pools" {
  description = "The fleet file's node pools: one GKE node pool each, named after the pool (the GKE adapter's default node_pool). Sizes are totals over the region's zones."
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
    condition     = alltrue([for p in var.node_pools : can(regex("^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", p.name))])
    error_message = "node pool names must be 1-40 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
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
  description = "Existing network ids (vpc_id = the VPC network's name or self link; subnet_ids[0] = a subnetwork with the secondary ranges named in secondary_range_names), or a CIDR from which a VPC-native network is created."
  type = object({
    vpc_id     = optional(string)
    subnet_ids = optional(list(string), [])
    cidr       = optional(string, "10.0.0.0/16")
  })
  default = {}

  validation {
    condition     = can(cidrnetmask(var.network.cidr)) && tonumber(split("/", var.network.cidr)[1]) <= 20
    error_message = "network.cidr must be an IPv4 CIDR of /20 or larger (nodes, pods and services ranges are cut from it)."
  }

  validation {
    condition     = var.network.vpc_id == null || length(var.network.subnet_ids) >= 1
    error_message = "with an existing network.vpc_id, give the subnetwork as network.subnet_ids[0]."
  }
}

variable "serverless" {
  description = "Serverless-style capacity: node auto-provisioning plus the meridian-burst compute class (see README for why not Autopilot)."
  type = object({
    enabled = optional(bool, true)
  })
  default = {}
}

variable "task_namespaces" {
  description = "Namespaces where Meridian's task Jobs run (reported in the serverless output; compute classes are cluster-wide)."
  type        = list(string)
  default     = ["meridian-tasks"]

  validation {
    condition     = length(var.task_namespaces) >= 1 && alltrue([for ns in var.task_namespaces : can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", ns))])
    error_message = "task_namespaces must hold at least one Kubernetes namespace name (DNS-1123 label)."
  }
}

variable "meridian_namespace" {
  description = "Namespace of the unit worker; its ServiceAccount meridian-unit is the only Kubernetes subject that may act as the node-pool service account."
  type        = string
  default     = "meridian"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.meridian_namespace))
    error_message = "meridian_namespace must be a Kubernetes namespace name (DNS-1123 label)."
  }
}

variable "tags" {
  description = "Labels added to the cluster and nodes as GCP resource labels (GCP label keys cannot contain '.' or '/', so Meridian's own are meridian-region and meridian-node-pool)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "tags must be valid GCP labels: lowercase keys starting with a letter, values of lowercase letters, digits, '_' or '-'."
  }
}

# ---------------------------------------------------------------------------------------
# GKE-specific inputs, all optional.
# ---------------------------------------------------------------------------------------

variable "project" {
  description = "The GCP project; null uses the google provider's project. One project per region is the recommended IAM boundary (see README)."
  type        = string
  default     = null
}

variable "zones" {
  description = "Zones of the region to place nodes in; empty lets GKE choose (three zones). Node pool sizes are totals and are spread over these zones."
  type        = list(string)
  default     = []
}

variable "secondary_range_names" {
  description = "Names of the pods and services secondary ranges of the subnetwork (created with these names, or expected on an existing subnetwork)."
  type = object({
    pods     = optional(string, "pods")
    services = optional(string, "services")
  })
  default = {}
}

variable "api_private_only" {
  description = "Serve the API on the private endpoint only; operators then reach it from the VPC (VPN, bastion or peered network)."
  type        = bool
  default     = false
}

variable "api_allowed_cidrs" {
  description = "CIDRs allowed to reach the API (master authorized networks: operators' and CI egress ranges). Empty leaves the public endpoint open (authentication still applies)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.api_allowed_cidrs : can(cidrnetmask(c))])
    error_message = "api_allowed_cidrs must be IPv4 CIDRs."
  }
}

variable "master_cidr" {
  description = "The /28 for the control plane's private endpoint; it must not overlap the VPC or peered networks."
  type        = string
  default     = "172.16.0.0/28"

  validation {
    condition     = can(cidrnetmask(var.master_cidr)) && endswith(var.master_cidr, "/28")
    error_message = "master_cidr must be an IPv4 /28."
  }
}

variable "burst_limits" {
  description = "Cluster-wide ceilings for node auto-provisioning. GKE applies them to the fleet's node pools as well, so they must cover every pool at max_size plus the burst."
  type = object({
    cpu       = optional(number, 1024)
    memory_gb = optional(number, 4096)
  })
  default = {}

  validation {
    condition     = var.burst_limits.cpu > 0 && var.burst_limits.memory_gb > 0
    error_message = "burst_limits must be positive."
  }
}

variable "database_encryption_key" {
  description = "A Cloud KMS key (projects/.../cryptoKeys/...) for application-layer Secrets encryption; the GKE service agent needs Encrypter/Decrypter on it. null keeps Google's default encryption at rest."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse `terraform destroy` of the cluster; set false before tearing a region down."
  type        = bool
  default     = true
}
