terraform {
  required_version = ">= 1.6"

  required_providers {
    baiducloud = {
      # The registry address is lower case; the GitHub repository is baidubce/terraform-provider-baiducloud.
      source = "baidubce/baiducloud"
      # 1.23 has instance_resource.machine_spec on baiducloud_ccev2_instance_group.
      version = "~> 1.23"
    }
  }
}
