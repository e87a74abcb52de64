terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.81 is the first release where aws_iam_openid_connect_provider no longer
      # needs a thumbprint_list (IAM validates the EKS issuer against its own CAs).
      version = "~> 5.81"
    }
  }
}
