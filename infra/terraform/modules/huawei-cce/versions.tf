terraform {
  required_version = ">= 1.6"

  required_providers {
    huaweicloud = {
      source = "huaweicloud/huaweicloud"
      # 1.95 has huaweicloud_cce_cluster_pod_identity_association (1.92) and
      # huaweicloud_identityv5_policy_agency_attach (1.95).
      version = "~> 1.95"
    }
  }
}
