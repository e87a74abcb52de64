# One Meridian region on ACK, as the fleet root instantiates it.
terraform {
  required_version = ">= 1.6"

  required_providers {
    alicloud = {
      source  = "aliyun/alicloud"
      version = "~> 1.260"
    }
  }
}

provider "alicloud" {
  region = "cn-beijing"
}

module "alibaba_cn_beijing" {
  source = "../.."

  name               = "alibaba-cn-beijing"
  region             = "cn-beijing"
  kubernetes_version = "1.31"
  network            = { cidr = "10.30.0.0/16" }
  node_pools = [
    { name = "general", machine_type = "ecs.g7.4xlarge", min_size = 2, desired_size = 6, max_size = 20 },
  ]
  tags = { owner = "platform" }
}

output "region" {
  value = {
    cluster_endpoint       = module.alibaba_cn_beijing.cluster_endpoint
    cluster_ca_certificate = module.alibaba_cn_beijing.cluster_ca_certificate
    node_pool_ids          = module.alibaba_cn_beijing.node_pool_ids
    unit_worker_identity   = module.alibaba_cn_beijing.unit_worker_identity
  }
}
