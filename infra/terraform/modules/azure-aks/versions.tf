terraform {
  required_version = ">= 1.6"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.65 renamed azurerm_federated_identity_credential's parent_id to
      # user_assigned_identity_id, which this module uses.
      version = "~> 4.65"
    }
  }
}
