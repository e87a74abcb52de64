# Common outputs: the same names in every Meridian cloud module.

output "cluster_name" {
  description = "The EKS cluster's name (the adapter's `cluster`)."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "The Kubernetes API server URL."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "The cluster CA, base64-encoded PEM (kubeconfig certificate-authority-data)."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "node_pool_ids" {
  description = "Fleet pool name => EKS node group name (the EKS adapter's `nodegroup`)."
  value       = { for name, ng in aws_eks_node_group.this : name => ng.node_group_name }
}

output "unit_worker_identity" {
  description = "IRSA: annotate the meridian-unit ServiceAccount with service_account_annotations."
  value = {
    kind            = "aws-irsa"
    service_account = "${var.meridian_namespace}/meridian-unit"
    role_arn        = aws_iam_role.unit_worker.arn
    service_account_annotations = {
      "eks.amazonaws.com/role-arn" = aws_iam_role.unit_worker.arn
    }
    pod_labels = {}
  }
}

output "serverless" {
  description = "The Fargate profile, and how a pod opts into it; null when serverless is disabled."
  value = var.serverless.enabled ? {
    kind          = "eks-fargate"
    id            = aws_eks_fargate_profile.tasks[0].id
    namespaces    = var.task_namespaces
    pod_labels    = local.serverless_label
    node_selector = {}
    tolerations   = []
  } : null
}

# EKS-specific: the node-pool adapter config per pool, as meridian/nodepools/eks.py reads it.
output "node_pool_config" {
  description = "Fleet pool name => the `eks` driver's config (cluster, nodegroup, aws_region)."
  value = {
    for name, ng in aws_eks_node_group.this : name => {
      driver     = "eks"
      cluster    = aws_eks_cluster.this.name
      nodegroup  = ng.node_group_name
      aws_region = var.region
    }
  }
}

output "oidc_provider_arn" {
  description = "The cluster's IAM OIDC provider, for further IRSA roles."
  value       = aws_iam_openid_connect_provider.this.arn
}
