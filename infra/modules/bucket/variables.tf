variable "name" {
  description = "Bucket name (globally unique)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the default encryption (SSE-KMS with a bucket key); null only for the access-log bucket (SSE-S3)."
  type        = string
  default     = null
}

variable "access_logs_bucket" {
  description = "Bucket that receives this bucket's server access logs; null only for the access-log bucket itself."
  type        = string
  default     = null
}

variable "lifecycle_rules" {
  description = "Per-prefix rules: move to an archive class after transition_days, delete after expiration_days (null = never)."
  type = list(object({
    id                       = string
    prefix                   = string
    transition_days          = optional(number)
    transition_storage_class = optional(string, "GLACIER_IR")
    expiration_days          = optional(number)
  }))
  default = []
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted object version is kept (versioning is on, so nothing is lost at once)."
  type        = number
  default     = 30
}

variable "extra_policy_statements" {
  description = "IAM policy documents (JSON) merged into the bucket policy next to the TLS-only statement."
  type        = list(string)
  default     = []
}

variable "force_destroy" {
  description = "Let terraform destroy delete a bucket that still holds objects (for throw-away environments)."
  type        = bool
  default     = false
}
