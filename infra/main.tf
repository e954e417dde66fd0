# triplake on AWS: landing bucket -> SQS -> Airflow DAG -> EMR Serverless Spark jobs -> lake bucket, Glue
# catalog and Athena; status events on SNS. The names match triplake.settings.Settings and sql/ddl, and the
# `triplake_settings` output hands every TRIPLAKE_* value to the app, so each name is defined here once.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  landing_bucket     = "${var.name}-landing-${local.account_id}"
  lake_bucket        = "${var.name}-lake-${local.account_id}"
  access_logs_bucket = "${var.name}-access-logs-${local.account_id}"
  lake_root          = "s3://${local.lake_bucket}/${var.lake_prefix}"
  package_prefix     = "package" # `make package` output, uploaded by the deploy guide
  athena_results     = "${var.lake_prefix}/_athena_results/"

  landing_queue_name     = "${var.name}-landing"
  dead_letter_queue_name = "${var.name}-landing-dlq"
  status_topic_name      = "${var.name}-ingestion-status"
  status_queue_name      = "${var.name}-ingestion-status-events"
  glue_database          = var.name
  athena_workgroup       = var.name
  emr_application_name   = var.name
  glue_job_name          = "${var.name}-ingestion"
  lake_writers_pool      = "${var.name}_lake_writers"
  # local.tables, the Glue tables of sql/ddl, is in tables.tf.json: generated from sql/ddl (make infra-tables).
}

# ---------------------------------------------------------------------------------------------------------------
# Encryption: one customer-managed key for the buckets, queues, topic and Athena results of the deployment.
# ---------------------------------------------------------------------------------------------------------------

resource "aws_kms_key" "this" {
  description             = "${var.name}: buckets, queues, status topic and Athena results"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersTheKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # The Glue job's logs are encrypted with this key (its security configuration, infra/glue.tf).
        Sid       = "LogsOfTheGlueJob"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.aws_region}.amazonaws.com" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:/aws-glue/*" }
        }
      },
      {
        # S3 encrypts the ObjectCreated messages it sends to the landing queue; SNS those it sends to the
        # status queue. Both only on behalf of this account.
        Sid       = "NotificationsToEncryptedQueues"
        Effect    = "Allow"
        Principal = { Service = ["s3.amazonaws.com", "sns.amazonaws.com"] }
        Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# ---------------------------------------------------------------------------------------------------------------
# Buckets: landing (users upload), lake (raw copies, curated tables, marts, models, Athena results, the Spark
# package) and the access-log bucket both of them log to.
# ---------------------------------------------------------------------------------------------------------------

module "landing_bucket" {
  source = "./modules/bucket"

  name               = local.landing_bucket
  kms_key_arn        = aws_kms_key.this.arn
  access_logs_bucket = aws_s3_bucket.access_logs.id
  force_destroy      = var.force_destroy
  lifecycle_rules = [
    { id = "archive-uploads", prefix = var.landing_prefix, transition_days = var.raw_archive_after_days },
  ]
}

module "lake_bucket" {
  source = "./modules/bucket"

  name               = local.lake_bucket
  kms_key_arn        = aws_kms_key.this.arn
  access_logs_bucket = aws_s3_bucket.access_logs.id
  force_destroy      = var.force_destroy
  lifecycle_rules = [
    { id = "archive-raw-copies", prefix = "${var.lake_prefix}/raw/", transition_days = var.raw_archive_after_days },
    { id = "expire-athena-results", prefix = local.athena_results, expiration_days = var.athena_results_expiration_days },
    { id = "expire-abandoned-staging", prefix = "${var.lake_prefix}/_staging/", expiration_days = 7 },
  ]
}

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log bucket; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144:Access logs are not replicated to a second region; they are an audit aid, not data.
  #checkov:skip=CKV_AWS_145:S3 server access logs can only be delivered to a bucket with SSE-S3, not SSE-KMS.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of the access-log bucket.
  bucket        = local.access_logs_bucket
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = 365
    }

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "S3ServerAccessLogsOfThisAccount"
        Effect    = "Allow"
        Principal = { Service = "logging.s3.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.access_logs.arn}/*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

# ---------------------------------------------------------------------------------------------------------------
# Landing events: every new .csv / .csv.gz under the landing prefix becomes a message the DAG's asset watcher
# reads. Messages the watcher cannot take after 5 receives go to the dead-letter queue.
# ---------------------------------------------------------------------------------------------------------------

resource "aws_sqs_queue" "landing_dead_letter" {
  name                      = local.dead_letter_queue_name
  kms_master_key_id         = aws_kms_key.this.arn
  message_retention_seconds = 1209600 # 14 days, the maximum: time to look at what failed
}

resource "aws_sqs_queue" "landing" {
  name                              = local.landing_queue_name
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 3600
  message_retention_seconds         = 345600 # 4 days: an Airflow outage over a long weekend loses no upload
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.landing_dead_letter.arn
    maxReceiveCount     = 5
  })
}

resource "aws_sqs_queue_policy" "landing" {
  queue_url = aws_sqs_queue.landing.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "OnlyTheLandingBucketSends"
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.landing.arn
      Condition = {
        ArnEquals    = { "aws:SourceArn" = module.landing_bucket.arn }
        StringEquals = { "aws:SourceAccount" = local.account_id }
      }
    }]
  })
}

# Every object created under the landing prefix, whatever its name: the DAG decides what it ingests
# (triplake.events.is_ingestible: .csv and .csv.gz in any case) and answers every other upload FAILED.
resource "aws_s3_bucket_notification" "landing" {
  bucket = module.landing_bucket.id

  queue {
    id            = "${var.name}-landing-uploads"
    queue_arn     = aws_sqs_queue.landing.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = var.landing_prefix
  }

  depends_on = [aws_sqs_queue_policy.landing]
}

# ---------------------------------------------------------------------------------------------------------------
# Status events: one message per RECEIVED / SUCCEEDED / FAILED, to email, HTTPS webhooks and an SQS queue.
# ---------------------------------------------------------------------------------------------------------------

resource "aws_sns_topic" "status" {
  name              = local.status_topic_name
  kms_master_key_id = aws_kms_key.this.arn
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.status_email_addresses)

  topic_arn = aws_sns_topic.status.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_sns_topic_subscription" "webhook" {
  for_each = toset(var.status_webhook_urls)

  topic_arn = aws_sns_topic.status.arn
  protocol  = "https"
  endpoint  = each.value
  # `triplake watch` confirms its subscription itself once the confirmation's signature checks out.
  endpoint_auto_confirms          = true
  confirmation_timeout_in_minutes = 2
}

resource "aws_sqs_queue" "status_events" {
  count = var.create_status_queue ? 1 : 0

  name                      = local.status_queue_name
  kms_master_key_id         = aws_kms_key.this.arn
  message_retention_seconds = 1209600
}

resource "aws_sqs_queue_policy" "status_events" {
  count = var.create_status_queue ? 1 : 0

  queue_url = aws_sqs_queue.status_events[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "OnlyTheStatusTopicSends"
      Effect    = "Allow"
      Principal = { Service = "sns.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.status_events[0].arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_sns_topic.status.arn } }
    }]
  })
}

resource "aws_sns_topic_subscription" "status_events" {
  count = var.create_status_queue ? 1 : 0

  topic_arn            = aws_sns_topic.status.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.status_events[0].arn
  raw_message_delivery = true # the body is the status JSON itself, `status` and `ingestion_id` message attributes
}

# ---------------------------------------------------------------------------------------------------------------
# Catalog and SQL: the Glue database and tables of sql/ddl, and the Athena workgroup analysts query in.
# ---------------------------------------------------------------------------------------------------------------

resource "aws_glue_catalog_database" "this" {
  name        = local.glue_database
  description = "${var.name}: trips, routes and weekly tables (sql/ddl)"
}

resource "aws_glue_catalog_table" "this" {
  for_each = local.tables

  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  table_type    = "EXTERNAL_TABLE"
  parameters = {
    EXTERNAL              = "TRUE"
    classification        = "parquet"
    "parquet.compression" = "ZSTD"
  }

  dynamic "partition_keys" {
    for_each = each.value.partition_keys

    content {
      name = partition_keys.value.name
      type = partition_keys.value.type
    }
  }

  storage_descriptor {
    location      = "${local.lake_root}/${each.value.location}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    dynamic "columns" {
      for_each = each.value.columns

      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

resource "aws_athena_workgroup" "this" {
  name          = local.athena_workgroup
  description   = "${var.name}: queries over the lake; results expire after ${var.athena_results_expiration_days} days"
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    result_configuration {
      output_location = "s3://${module.lake_bucket.id}/${local.athena_results}"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.this.arn
      }
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------
# Spark: the EMR Serverless application the jobs run on, and the role the job runs assume.
# ---------------------------------------------------------------------------------------------------------------

resource "aws_emrserverless_application" "this" {
  name          = local.emr_application_name
  release_label = var.emr_release_label
  type          = "spark"
  architecture  = var.emr_architecture

  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = var.emr_idle_timeout_minutes
  }

  maximum_capacity {
    cpu    = var.emr_maximum_capacity.cpu
    memory = var.emr_maximum_capacity.memory
    disk   = var.emr_maximum_capacity.disk
  }
}

data "aws_iam_policy_document" "emr_job_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_emrserverless_application.this.arn]
    }
  }
}

# The jobs read uploads and the package, and read and write the lake; nothing else.
data "aws_iam_policy_document" "emr_job" {
  statement {
    sid       = "ReadUploads"
    actions   = ["s3:GetObject"]
    resources = ["${module.landing_bucket.arn}/${var.landing_prefix}*"]
  }

  statement {
    sid       = "ReadThePackage"
    actions   = ["s3:GetObject"]
    resources = ["${module.lake_bucket.arn}/${local.package_prefix}/*"]
  }

  statement {
    sid       = "ReadAndWriteTheLake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${module.lake_bucket.arn}/${var.lake_prefix}/*"]
  }

  statement {
    sid       = "ListTheLakeAndUploads"
    actions   = ["s3:ListBucket"]
    resources = [module.lake_bucket.arn, module.landing_bucket.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.lake_prefix}/*", "${var.lake_prefix}", "${local.package_prefix}/*", "${var.landing_prefix}*"]
    }
  }

  statement {
    # EMRFS asks where a bucket is before it reads it; that request carries no prefix to condition on.
    sid       = "LocateTheBuckets"
    actions   = ["s3:GetBucketLocation"]
    resources = [module.lake_bucket.arn, module.landing_bucket.arn]
  }

  statement {
    sid       = "UseTheDeploymentKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role" "emr_job" {
  name               = "${var.name}-emr-job"
  assume_role_policy = data.aws_iam_policy_document.emr_job_trust.json
}

resource "aws_iam_role_policy" "emr_job" {
  name   = "${var.name}-emr-job"
  role   = aws_iam_role.emr_job.id
  policy = data.aws_iam_policy_document.emr_job.json
}

# ---------------------------------------------------------------------------------------------------------------
# Airflow: what the DAG may do, as one managed policy for whichever Airflow runs it (the MWAA module below,
# or an Airflow of your own: attach `airflow_policy_arn` to its role).
# ---------------------------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "airflow" {
  statement {
    sid       = "ConsumeLandingEvents"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.landing.arn]
  }

  statement {
    sid = "RunSparkJobs"
    actions = [
      "emr-serverless:GetApplication", "emr-serverless:StartApplication", "emr-serverless:StartJobRun",
      "emr-serverless:GetJobRun", "emr-serverless:CancelJobRun",
    ]
    resources = [aws_emrserverless_application.this.arn, "${aws_emrserverless_application.this.arn}/jobruns/*"]
  }

  statement {
    sid       = "HandTheJobRoleToEmrServerless"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.emr_job.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["emr-serverless.amazonaws.com"]
    }
  }

  statement {
    sid = "RunTheGlueJob"
    actions = [
      "glue:GetJob", "glue:StartJobRun", "glue:GetJobRun", "glue:BatchStopJobRun",
    ]
    resources = [aws_glue_job.ingestion.arn]
  }

  statement {
    sid       = "ReadJobReports"
    actions   = ["s3:GetObject"]
    resources = ["${module.lake_bucket.arn}/${var.lake_prefix}/_reports/*"]
  }

  # A job that failed early leaves no report: S3 answers a HEAD of a missing key with 404 (not 403) only to a
  # caller that may list the bucket. Without a condition: S3 gives HeadObject no s3:prefix to match.
  statement {
    sid       = "TellAMissingReportFromAForbiddenOne"
    actions   = ["s3:ListBucket"]
    resources = [module.lake_bucket.arn]
  }

  # The lake's writer lease (one object, written with conditional PUTs) and the ingestions record of an upload
  # that never reached a Spark job (an unsupported file, a lake that stayed busy).
  statement {
    sid       = "HoldTheLakeLease"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${module.lake_bucket.arn}/${var.lake_prefix}/_lease.json"]
  }

  statement {
    sid       = "RecordFailedUploads"
    actions   = ["s3:PutObject"]
    resources = ["${module.lake_bucket.arn}/${var.lake_prefix}/curated/ingestions/*"]
  }

  statement {
    sid     = "RegisterPartitions"
    actions = ["glue:GetTable", "glue:GetPartitions", "glue:BatchCreatePartition"]
    resources = concat(
      ["arn:${local.partition}:glue:${var.aws_region}:${local.account_id}:catalog", aws_glue_catalog_database.this.arn],
      [for table in aws_glue_catalog_table.this : table.arn],
    )
  }

  statement {
    sid       = "PublishStatusEvents"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.status.arn]
  }

  statement {
    sid       = "UseTheDeploymentKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_policy" "airflow" {
  name        = "${var.name}-airflow"
  description = "${var.name}: what the trips_ingest DAG needs (landing queue, EMR Serverless, reports, Glue partitions, status topic)"
  policy      = data.aws_iam_policy_document.airflow.json
}

module "mwaa" {
  source = "./modules/mwaa"
  count  = var.create_mwaa ? 1 : 0

  name                = var.name
  airflow_version     = var.mwaa_airflow_version
  environment_class   = var.mwaa_environment_class
  subnet_ids          = var.mwaa_subnet_ids
  security_group_ids  = var.mwaa_security_group_ids
  kms_key_arn         = aws_kms_key.this.arn
  access_logs_bucket  = aws_s3_bucket.access_logs.id
  triplake_policy_arn = aws_iam_policy.airflow.arn
  triplake_settings   = local.triplake_settings
  force_destroy       = var.force_destroy
}

# Every TRIPLAKE_* setting the app needs in this deployment (triplake.settings.Settings reads them).
locals {
  triplake_settings = {
    TRIPLAKE_AWS_REGION             = var.aws_region
    TRIPLAKE_LAKE_ROOT              = local.lake_root
    TRIPLAKE_LANDING_BUCKET         = module.landing_bucket.id
    TRIPLAKE_LANDING_PREFIX         = var.landing_prefix
    TRIPLAKE_LANDING_QUEUE_NAME     = aws_sqs_queue.landing.name
    TRIPLAKE_LANDING_QUEUE_URL      = aws_sqs_queue.landing.url
    TRIPLAKE_STATUS_TOPIC_NAME      = aws_sns_topic.status.name
    TRIPLAKE_STATUS_TOPIC_ARN       = aws_sns_topic.status.arn
    TRIPLAKE_GLUE_DATABASE          = aws_glue_catalog_database.this.name
    TRIPLAKE_ATHENA_WORKGROUP       = aws_athena_workgroup.this.name
    TRIPLAKE_SPARK_RUNNER           = var.spark_runner
    TRIPLAKE_GLUE_JOB_NAME          = aws_glue_job.ingestion.name
    TRIPLAKE_EMR_APPLICATION_ID     = aws_emrserverless_application.this.id
    TRIPLAKE_EMR_EXECUTION_ROLE_ARN = aws_iam_role.emr_job.arn
    TRIPLAKE_EMR_PACKAGE_URI        = "s3://${module.lake_bucket.id}/${local.package_prefix}"
    TRIPLAKE_LAKE_WRITERS_POOL      = local.lake_writers_pool
  }
}
