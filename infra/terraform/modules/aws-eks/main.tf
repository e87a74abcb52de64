# Meridian region on AWS: VPC (or existing subnets), an EKS cluster, one managed node
# group per fleet pool, a Fargate profile for burst pods, and the unit worker's IRSA role.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  create_network = var.network.vpc_id == null
  zones          = slice(data.aws_availability_zones.available.names, 0, 3)
  account_id     = data.aws_caller_identity.current.account_id
  partition      = data.aws_partition.current.partition

  # The labels Meridian's node-pool adapters and GET /v1/regions/{name} look for.
  region_label = { "meridian.io/region" = var.name }
  tags         = merge(var.tags, local.region_label, { "app.kubernetes.io/managed-by" = "terraform" })

  pools = { for p in var.node_pools : p.name => p }

  vpc_id             = local.create_network ? aws_vpc.this[0].id : var.network.vpc_id
  private_subnet_ids = local.create_network ? [for s in aws_subnet.private : s.id] : var.network.subnet_ids

  # Burst pods opt in with this label; everything else stays on the node groups.
  serverless_label = { "meridian.io/capacity" = "serverless" }

  oidc_issuer = trimprefix(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://")
  unit_sa     = "system:serviceaccount:${var.meridian_namespace}:meridian-unit"
}

# ---------------------------------------------------------------------------------------
# Network: private subnets for nodes and Fargate, public subnets for the NAT gateway and
# internet-facing load balancers. Skipped when network.vpc_id is given.
# ---------------------------------------------------------------------------------------

resource "aws_vpc" "this" {
  count = local.create_network ? 1 : 0

  cidr_block           = var.network.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # EKS private endpoint and node registration need DNS names
  tags                 = merge(local.tags, { Name = var.name })
}

# A VPC's default security group allows all traffic between its members; nothing here
# uses it, so it is emptied.
resource "aws_default_security_group" "this" {
  count = local.create_network ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(local.tags, { Name = "${var.name}-default-unused" })
}

resource "aws_subnet" "private" {
  for_each = local.create_network ? { for i, az in local.zones : az => i } : {}

  vpc_id            = aws_vpc.this[0].id
  availability_zone = each.key
  cidr_block        = cidrsubnet(var.network.cidr, 4, each.value)
  tags = merge(local.tags, {
    Name                              = "${var.name}-private-${each.key}"
    "kubernetes.io/role/internal-elb" = "1"
  })
}

resource "aws_subnet" "public" {
  for_each = local.create_network ? { for i, az in local.zones : az => i } : {}

  vpc_id            = aws_vpc.this[0].id
  availability_zone = each.key
  cidr_block        = cidrsubnet(var.network.cidr, 8, 240 + each.value)
  tags = merge(local.tags, {
    Name                     = "${var.name}-public-${each.key}"
    "kubernetes.io/role/elb" = "1"
  })
}

resource "aws_internet_gateway" "this" {
  count = local.create_network ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(local.tags, { Name = var.name })
}

resource "aws_eip" "nat" {
  count = local.create_network ? 1 : 0

  domain = "vpc"
  tags   = merge(local.tags, { Name = "${var.name}-nat" })
}

# One NAT gateway keeps a unit region cheap; nodes lose egress (image pulls, AWS APIs)
# if its zone fails. Add one per zone for production-critical regions.
resource "aws_nat_gateway" "this" {
  count = local.create_network ? 1 : 0

  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[local.zones[0]].id
  tags          = merge(local.tags, { Name = var.name })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  count = local.create_network ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(local.tags, { Name = "${var.name}-public" })

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this[0].id
  }
}

resource "aws_route_table" "private" {
  count = local.create_network ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(local.tags, { Name = "${var.name}-private" })

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.this[0].id
  }
}

resource "aws_route_table_association" "public" {
  for_each = aws_subnet.public

  subnet_id      = each.value.id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_route_table_association" "private" {
  for_each = aws_subnet.private

  subnet_id      = each.value.id
  route_table_id = aws_route_table.private[0].id
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  count = local.create_network ? 1 : 0

  name              = "/aws/vpc/${var.name}/flow-logs"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_iam_role" "flow_logs" {
  count = local.create_network ? 1 : 0

  name = "${var.name}-vpc-flow-logs"
  tags = local.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "vpc-flow-logs.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "flow_logs" {
  count = local.create_network ? 1 : 0

  name = "write-flow-logs"
  role = aws_iam_role.flow_logs[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
      Resource = "${aws_cloudwatch_log_group.flow_logs[0].arn}:*"
    }]
  })
}

resource "aws_flow_log" "this" {
  count = local.create_network ? 1 : 0

  vpc_id          = aws_vpc.this[0].id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn    = aws_iam_role.flow_logs[0].arn
  tags            = local.tags
}

# ---------------------------------------------------------------------------------------
# Encryption key: Kubernetes Secrets (envelope encryption in etcd) and the log groups.
# ---------------------------------------------------------------------------------------

resource "aws_kms_key" "this" {
  description             = "Meridian ${var.name}: EKS secrets and control-plane logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = local.tags

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # CloudWatch Logs encrypts only this region's log groups of this account.
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/meridian-${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# ---------------------------------------------------------------------------------------
# Cluster
# ---------------------------------------------------------------------------------------

resource "aws_iam_role" "cluster" {
  name = "${var.name}-eks-cluster"
  tags = local.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "eks.amazonaws.com" }
      Action    = ["sts:AssumeRole", "sts:TagSession"]
    }]
  })
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

# EKS envelope-encrypts Secrets with the key using the cluster role's own permissions.
resource "aws_iam_role_policy" "cluster_encryption" {
  name = "encrypt-secrets"
  role = aws_iam_role.cluster.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"]
      Resource = aws_kms_key.this.arn
    }]
  })
}

# Created before the cluster so that EKS writes into a group with our retention and key
# instead of creating one that never expires.
resource "aws_cloudwatch_log_group" "cluster" {
  name              = "/aws/eks/${var.name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_eks_cluster" "this" {
  name                      = var.name
  version                   = var.kubernetes_version
  role_arn                  = aws_iam_role.cluster.arn
  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  tags                      = local.tags

  vpc_config {
    subnet_ids = local.private_subnet_ids
    # Nodes always reach the API privately; the public endpoint is for operators and CI.
    endpoint_private_access = true
    endpoint_public_access  = !var.api_private_only
    public_access_cidrs     = var.api_private_only || length(var.api_allowed_cidrs) == 0 ? null : var.api_allowed_cidrs
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.this.arn
    }
  }

  # Access entries, not the aws-auth ConfigMap; whoever applies this becomes admin.
  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  depends_on = [
    aws_iam_role_policy_attachment.cluster,
    aws_iam_role_policy.cluster_encryption,
    aws_cloudwatch_log_group.cluster,
  ]
}

# The VPC CNI enforces NetworkPolicy only when asked; infra/k8s ships a NetworkPolicy.
resource "aws_eks_addon" "vpc_cni" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "vpc-cni"
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"
  configuration_values        = jsonencode({ enableNetworkPolicy = "true" })
  tags                        = local.tags
}

# ---------------------------------------------------------------------------------------
# Node groups: one per fleet pool, named after it, in the private subnets.
# ---------------------------------------------------------------------------------------

resource "aws_iam_role" "node" {
  name = "${var.name}-eks-node"
  tags = local.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
  ])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

resource "aws_eks_node_group" "this" {
  for_each = local.pools

  cluster_name    = aws_eks_cluster.this.name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = local.private_subnet_ids
  instance_types  = [each.value.machine_type]
  version         = var.kubernetes_version

  scaling_config {
    min_size     = each.value.min_size
    desired_size = each.value.desired_size
    max_size     = each.value.max_size
  }

  update_config {
    max_unavailable = 1
  }

  labels = merge(local.region_label, { "meridian.io/node-pool" = each.key })
  tags   = merge(local.tags, { "meridian.io/node-pool" = each.key })

  lifecycle {
    # desired_size is only the starting size: Meridian's control loop (and the Cluster
    # Autoscaler, where it owns the group) resizes the group at run time. Without this,
    # every plan would try to put the group back to the fleet file's number.
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

# ---------------------------------------------------------------------------------------
# Serverless: a Fargate profile on the task namespaces. It selects only pods labelled
# meridian.io/capacity=serverless, so ordinary task pods stay on the node groups and
# Meridian steers a burst onto Fargate by adding that label.
# ---------------------------------------------------------------------------------------

resource "aws_iam_role" "fargate" {
  count = var.serverless.enabled ? 1 : 0

  name = "${var.name}-eks-fargate-pods"
  tags = local.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "eks-fargate-pods.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        ArnLike = {
          "aws:SourceArn" = "arn:${local.partition}:eks:${var.region}:${local.account_id}:fargateprofile/${var.name}/*"
        }
      }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "fargate" {
  count = var.serverless.enabled ? 1 : 0

  role       = aws_iam_role.fargate[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSFargatePodExecutionRolePolicy"
}

resource "aws_eks_fargate_profile" "tasks" {
  count = var.serverless.enabled ? 1 : 0

  cluster_name           = aws_eks_cluster.this.name
  fargate_profile_name   = "meridian-tasks"
  pod_execution_role_arn = aws_iam_role.fargate[0].arn
  subnet_ids             = local.private_subnet_ids
  tags                   = local.tags

  dynamic "selector" {
    for_each = toset(var.task_namespaces)
    content {
      namespace = selector.value
      labels    = local.serverless_label
    }
  }

  depends_on = [aws_iam_role_policy_attachment.fargate]
}

# ---------------------------------------------------------------------------------------
# Unit worker identity: IRSA. Only the ServiceAccount meridian-unit in
# var.meridian_namespace of this cluster can assume the role, and the role can resize
# only this cluster's node groups (exactly the calls meridian/nodepools/eks.py makes).
# ---------------------------------------------------------------------------------------

resource "aws_iam_openid_connect_provider" "this" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
  tags           = local.tags
}

resource "aws_iam_role" "unit_worker" {
  name = "${var.name}-meridian-unit"
  tags = local.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.this.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.oidc_issuer}:sub" = local.unit_sa
          "${local.oidc_issuer}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })
}

resource "aws_iam_role_policy" "unit_worker" {
  name = "resize-own-node-groups"
  role = aws_iam_role.unit_worker.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # describe_nodegroup / update_nodegroup_config on this module's groups only.
        Sid      = "OwnNodeGroups"
        Effect   = "Allow"
        Action   = ["eks:DescribeNodegroup", "eks:UpdateNodegroupConfig"]
        Resource = [for ng in aws_eks_node_group.this : ng.arn]
      },
      {
        # Listing a group's instances: these Describe calls have no resource-level
        # permissions in IAM, so "*" is the narrowest form AWS accepts.
        Sid      = "ListInstances"
        Effect   = "Allow"
        Action   = ["autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances"]
        Resource = "*"
      },
      {
        # remove_nodes terminates through the Auto Scaling group (so it does not
        # replace the node); EKS tags its groups with the cluster name.
        Sid      = "RemoveOwnNodes"
        Effect   = "Allow"
        Action   = "autoscaling:TerminateInstanceInAutoScalingGroup"
        Resource = "*"
        Condition = {
          StringEquals = { "aws:ResourceTag/eks:cluster-name" = aws_eks_cluster.this.name }
        }
      },
    ]
  })
}
