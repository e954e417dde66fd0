variable "name" {
  description = "Name of the deployment: prefix of every resource, the Glue database and the Athena workgroup. Lower-case letters and digits only, so it is valid for S3, Glue and Athena alike."
  type        = string
  default     = "triplake"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,20}$", var.name))
    error_message = "name must be 3-21 lower-case letters and digits, starting with a letter (it names buckets, a Glue database and an Athena workgroup)."
  }
}

variable "aws_region" {
  description = "Region of the deployment."
  type        = string
  default     = "eu-central-1"
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "landing_prefix" {
  description = "Key prefix of the landing bucket whose new .csv and .csv.gz objects start an ingestion."
  type        = string
  default     = "incoming/"
}

variable "lake_prefix" {
  description = "Key prefix of the lake inside the lake bucket (the lake root is s3://<lake bucket>/<lake_prefix>)."
  type        = string
  default     = "lake"
}

variable "raw_archive_after_days" {
  description = "Days after which the raw/ copies of uploaded files move to S3 Glacier Instant Retrieval (still readable at once, for a re-ingestion)."
  type        = number
  default     = 30
}

variable "upload_retention_days" {
  description = "Days an uploaded file stays in the landing bucket (the lake keeps its raw copy): at least the dead-letter queue's 14 days, so an upload a redrive sends back is still there."
  type        = number
  default     = 30

  validation {
    condition     = var.upload_retention_days >= 15
    error_message = "upload_retention_days must be at least 15: the dead-letter queue keeps a message 14 days."
  }
}

variable "athena_results_expiration_days" {
  description = "Days Athena query results are kept."
  type        = number
  default     = 7
}

variable "athena_bytes_scanned_cutoff" {
  description = "Athena cancels a query of the workgroup once it has scanned this many bytes (10 GiB by default; a full scan of 100M trips reads about 4.5 GiB of Parquet: 455 MiB per 10M measured in docs/benchmarks.md)."
  type        = number
  default     = 10737418240
}

variable "status_email_addresses" {
  description = "Email addresses subscribed to the status topic (each confirms the subscription from its inbox)."
  type        = list(string)
  default     = []
}

variable "status_webhook_urls" {
  description = "HTTPS endpoints subscribed to the status topic (for example `triplake watch --public-url`); they confirm the subscription themselves."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for url in var.status_webhook_urls : startswith(url, "https://")])
    error_message = "status_webhook_urls must be https:// URLs: status events are not sent in clear text."
  }
}

variable "create_status_queue" {
  description = "Create an SQS queue subscribed to the status topic, for programs that consume status events."
  type        = bool
  default     = true
}

variable "spark_runner" {
  description = "Where the DAG runs Spark: emr-serverless (per-second billing, starts in ~1 min with pre-initialized capacity) or glue (no application to manage, billed per DPU-second with a 1-minute minimum). docs/deploy.md compares them."
  type        = string
  default     = "emr-serverless"

  validation {
    condition     = contains(["emr-serverless", "glue"], var.spark_runner)
    error_message = "spark_runner is emr-serverless or glue."
  }
}

variable "glue_version" {
  description = "AWS Glue release of the ingestion job: 5.1 runs Spark 3.5.6 and Python 3.11, what the jobs are tested with."
  type        = string
  default     = "5.1"
}

variable "glue_worker_type" {
  description = "Glue worker type: G.1X is 4 vCPU and 16 GB, 1 DPU."
  type        = string
  default     = "G.1X"
}

variable "glue_number_of_workers" {
  description = "Glue workers per job run (one is the driver); 2 fits files up to ~10M rows."
  type        = number
  default     = 2
}

variable "emr_release_label" {
  description = "EMR Serverless release: emr-7.12.0 runs Spark 3.5.6, the pyspark the jobs are tested with."
  type        = string
  default     = "emr-7.12.0"
}

variable "emr_image_tag" {
  description = "Tag of the jobs' image in the spark_jobs_image_repository output (infra/emr-image/Dockerfile), built for emr_architecture; null until it is pushed."
  type        = string
  default     = null
}

variable "emr_architecture" {
  description = "CPU architecture of the EMR Serverless workers; the jobs are pure Python and Spark, so ARM64 (Graviton, about 20% cheaper) works."
  type        = string
  default     = "ARM64"
}

variable "emr_maximum_capacity" {
  description = "Upper bound of the EMR Serverless application across all its running jobs: the cost ceiling."
  type = object({
    cpu    = string
    memory = string
    disk   = string
  })
  default = {
    cpu    = "64 vCPU"
    memory = "256 GB"
    disk   = "1000 GB"
  }
}

variable "emr_idle_timeout_minutes" {
  description = "Minutes without a job after which the EMR Serverless application stops (it starts again with the next job)."
  type        = number
  default     = 15
}

variable "create_mwaa" {
  description = "Create an Amazon MWAA (Airflow 3) environment that runs the DAG. Without it, attach the airflow_policy_arn output to the role of the Airflow you run (docker-compose.yml on a host of your own, for example)."
  type        = bool
  default     = false
}

variable "mwaa_airflow_version" {
  description = "Airflow version of the MWAA environment (an Airflow 3 version MWAA offers; the DAG uses airflow.sdk and asset watchers)."
  type        = string
  default     = "3.0.6"
}

variable "mwaa_environment_class" {
  description = "MWAA environment class."
  type        = string
  default     = "mw1.small"
}

variable "mwaa_subnet_ids" {
  description = "Two private subnets (in different availability zones, with a NAT route or VPC endpoints) for MWAA."
  type        = list(string)
  default     = []
}

variable "mwaa_security_group_ids" {
  description = "Security groups of the MWAA environment (one that allows all traffic to itself)."
  type        = list(string)
  default     = []
}

variable "force_destroy" {
  description = "Let terraform destroy delete buckets that still hold objects. Keep false for anything but a throw-away environment."
  type        = bool
  default     = false
}
