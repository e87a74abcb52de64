# One Meridian unit region on EKS, as `meridian deploy render` writes it for
# aws-us-west-2 of infra/regions/fleet-15.yaml.

terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.81"
    }
  }
}

provider "aws" {
  region = "us-west-2"
}

module "aws_us_west_2" {
  source = "../.."

  name               = "aws-us-west-2"
  region             = "us-west-2"
  kubernetes_version = "1.31"
  network            = { cidr = "10.20.0.0/16" }
  node_pools = [
    { name = "general", machine_type = "m6i.4xlarge", min_size = 2, desired_size = 6, max_size = 20 },
  ]
  serverless        = { enabled = true }
  task_namespaces   = ["meridian-tasks"]
  api_allowed_cidrs = ["203.0.113.0/24"]
  tags              = { "meridian.io/fleet" = "fleet-15" }
}

output "region" {
  value = module.aws_us_west_2
}
