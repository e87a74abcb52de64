# One Meridian region on Huawei CCE, as the fleet root instantiates it.
terraform {
  required_version = ">= 1.6"

  required_providers {
    huaweicloud = {
      source  = "huaweicloud/huaweicloud"
      version = "~> 1.95"
    }
  }
}

provider "huaweicloud" {
  region = "cn-north-4"
}

module "huawei_cn_north_4" {
  source = "../.."

  name               = "huawei-cn-north-4"
  region             = "cn-north-4"
  kubernetes_version = "1.31"
  network            = { cidr = "10.60.0.0/16" }
  node_pools = [
    { name = "general", machine_type = "c7.4xlarge.4", min_size = 2, desired_size = 6, max_size = 20 },
  ]
  tags = { owner = "platform" }
}

output "region" {
  value = {
    cluster_endpoint       = module.huawei_cn_north_4.cluster_endpoint
    cluster_ca_certificate = module.huawei_cn_north_4.cluster_ca_certificate
    node_pool_ids          = module.huawei_cn_north_4.node_pool_ids
    unit_worker_identity   = module.huawei_cn_north_4.unit_worker_identity
  }
}
