# One Meridian region on Baidu CCE, as the fleet root instantiates it.
terraform {
  required_version = ">= 1.6"

  required_providers {
    baiducloud = {
      source  = "baidubce/baiducloud"
      version = "~> 1.23"
    }
  }
}

provider "baiducloud" {
  region = "bj"
}

module "baidu_bj" {
  source = "../.."

  name               = "baidu-bj"
  region             = "bj"
  kubernetes_version = "1.30"
  network            = { cidr = "10.50.0.0/16" }
  node_pools = [
    { name = "general", machine_type = "bcc.g5.c16m64", min_size = 2, desired_size = 6, max_size = 20 },
  ]
  tags = { owner = "platform" }
}

output "region" {
  value = {
    cluster_endpoint       = module.baidu_bj.cluster_endpoint
    cluster_ca_certificate = module.baidu_bj.cluster_ca_certificate
    node_pool_ids          = module.baidu_bj.node_pool_ids
    unit_worker_identity   = module.baidu_bj.unit_worker_identity
  }
}
