variable "name" {
  description = "Name of the deployment (the environment is called <name>)."
  type        = string
}

variable "airflow_version" {
  description = "Airflow 3 version MWAA offers."
  type        = string
}

variable "environment_class" {
  description = "MWAA environment class."
  type        = string
}

variable "subnet_ids" {
  description = "Two private subnets in different availability zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) == 2
    error_message = "MWAA needs exactly two private subnets (mwaa_subnet_ids)."
  }
}

variable "security_group_ids" {
  description = "Security groups of the environment."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) > 0
    error_message = "MWAA needs at least one security group (mwaa_security_group_ids)."
  }
}

variable "kms_key_arn" {
  description = "Key of the deployment: the DAG bucket, the environment and its logs."
  type        = string
}

variable "access_logs_bucket" {
  description = "Bucket that receives the DAG bucket's server access logs."
  type        = string
}

variable "triplake_policy_arn" {
  description = "The policy of what the DAG does (queue, EMR Serverless, reports, Glue, topic)."
  type        = string
}

variable "triplake_settings" {
  description = "TRIPLAKE_* environment of the DAG, exported by the startup script."
  type        = map(string)
}

variable "force_destroy" {
  description = "Let terraform destroy delete the DAG bucket while it holds objects."
  type        = bool
  default     = false
}
