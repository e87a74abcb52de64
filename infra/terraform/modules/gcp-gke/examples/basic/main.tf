# One Meridian unit region on GKE, as `meridian deploy render` writes it for
# gcp-us-central1 of infra/regions/fleet-15.yaml.

terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
  }
}

provider "google" {
  project = "my-meridian-us-central1" # one project per region: the IAM boundary
  region  = "us-central1"
}

module "gcp_us_central1" {
  source = "../.."

  name               = "gcp-us-central1"
  region             = "us-central1"
  kubernetes_version = "1.31"
  network            = { cidr = "10.40.0.0/16" }
  node_pools = [
    { name = "general", machine_type = "n2-standard-16", min_size = 2, desired_size = 6, max_size = 20 },
  ]
  serverless        = { enabled = true }
  task_namespaces   = ["meridian-tasks"]
  api_allowed_cidrs = ["203.0.113.0/24"]
  tags              = { fleet = "fleet-15" }
}

output "region" {
  value = module.gcp_us_central1
}
