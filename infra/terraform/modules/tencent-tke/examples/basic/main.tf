# One Meridian region on TKE, as the fleet root instantiates it.
terraform {
  required_version = ">= 1.6"

  required_providers {
    tencentcloud = {
      source  = "tencentcloudstack/tencentcloud"
      version = "~> 1.82"
    }
  }
}

provider "tencentcloud" {
  region = "ap-guangzhou"
}

module "tencent_ap_guangzhou" {
  source = "../.."

  name               = "tencent-ap-guangzhou"
  region             = "ap-guangzhou"
  kubernetes_version = "1.30"
  network            = { cidr = "10.40.0.0/16" }
  node_pools = [
    { name = "general", machine_type = "S5.4XLARGE64", min_size = 2, desired_size = 6, max_size = 20 },
  ]
  tags = { owner = "platform" }
}

output "region" {
  value = {
    cluster_endpoint       = module.tencent_ap_guangzhou.cluster_endpoint
    cluster_ca_certificate = module.tencent_ap_guangzhou.cluster_ca_certificate
    node_pool_ids          = module.tencent_ap_guangzhou.node_pool_ids
    unit_worker_identity   = module.tencent_ap_guangzhou.unit_worker_identity
  }
}
