terraform {
  required_version = ">= 1.6"

  required_providers {
    alicloud = {
      source = "aliyun/alicloud"
      # 1.260 has everything used here: vswitch_ids on the cluster (1.241),
      # role_name/assume_role_policy_document on alicloud_ram_role (1.252).
      version = "~> 1.260"
    }
  }
}
