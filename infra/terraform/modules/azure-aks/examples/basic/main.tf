# One Meridian unit region on AKS, as `meridian deploy render` writes it for
# azure-eastus of infra/regions/fleet-15.yaml.

terraform {
  required_version = ">= 1.6"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.65"
    }
  }
}

provider "azurerm" {
  features {}
  subscription_id = "00000000-0000-0000-0000-000000000000" # your subscription
}

module "azure_eastus" {
  source = "../.."

  name               = "azure-eastus"
  region             = "eastus"
  kubernetes_version = "1.31"
  network            = { cidr = "10.30.0.0/16" }
  node_pools = [
    { name = "general", machine_type = "Standard_D16s_v5", min_size = 2, desired_size = 6, max_size = 20 },
  ]
  serverless             = { enabled = true }
  task_namespaces        = ["meridian-tasks"]
  admin_group_object_ids = ["11111111-1111-1111-1111-111111111111"] # your AKS admins group
  tags                   = { fleet = "fleet-15" }
}

output "region" {
  value = module.azure_eastus
}
