# Common outputs (the same names in every Meridian cluster module).

output "cluster_name" {
  description = "The CCE cluster's name (the Meridian region name)."
  value       = var.name
}

output "cluster_endpoint" {
  description = "The API server URL on the VPC (the cluster BLB's VPC address)."
  value       = "https://${baiducloud_ccev2_cluster.this.cluster_status[0].cluster_blb[0].vpc_ip}:6443"
}

output "cluster_ca_certificate" {
  description = "Always null here: the provider exposes no CA (nor kubeconfig) for CCE v2 clusters; take it from `GET /v2/kubeconfig/{cluster}/vpc` or the console (see README)."
  value       = null
}

output "node_pool_ids" {
  description = "Fleet pool name => CCE instance group id (the adapter's instance_group_id)."
  value       = { for name, group in baiducloud_ccev2_instance_group.this : name => group.id }
}

output "unit_worker_identity" {
  description = "The IAM user whose access key the meridian-unit pod reads from a Secret (the secret key is the separate, sensitive unit_worker_secret_access_key output)."
  value = {
    kind                        = "bce-iam-access-key"
    user_name                   = baiducloud_iam_user.unit_worker.name
    access_key_id               = baiducloud_iam_access_key.unit_worker.id
    service_account             = { namespace = var.meridian_namespace, name = local.unit_sa }
    secret_name                 = "meridian-unit-bce"
    secret_env_keys             = ["BCE_ACCESS_KEY_ID", "BCE_SECRET_ACCESS_KEY"]
    service_account_annotations = {}
  }
}

output "serverless" {
  description = "Always null: the Baidu provider has no BCI resource; the BCI virtual kubelet is installed from infra/k8s/."
  value       = null
}

# Baidu specific outputs.

output "cluster_id" {
  description = "The CCE cluster id: the adapter's cluster_id (with baidu_region = var.region)."
  value       = baiducloud_ccev2_cluster.this.id
}

output "vpc_id" {
  description = "The cluster's VPC."
  value       = local.vpc_id
}

output "unit_worker_secret_access_key" {
  description = "The unit worker's secret access key, for the meridian-unit-bce Secret."
  value       = baiducloud_iam_access_key.unit_worker.secret
  sensitive   = true
}
