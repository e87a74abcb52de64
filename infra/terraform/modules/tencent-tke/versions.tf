terraform {
  required_version = ">= 1.6"

  required_providers {
    tencentcloud = {
      source = "tencentcloudstack/tencentcloud"
      # 1.82 has tencentcloud_kubernetes_auth_attachment with the OIDC/pod-identity
      # switches and tencentcloud_kubernetes_serverless_node_pool.
      version = "~> 1.82"
    }
  }
}
