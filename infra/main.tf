# triplake on AWS: landing bucket -> SQS -> Airflow DAG -> EMR Serverless Spark jobs -> lake bucket, Glue
# catalog and Athena; status events on SNS. The names match triplake.settings.Settings and sql/ddl, and the
# `triplake_settings` output hands every TRIPLAKE_* value to the app, so each name is defined here once.
# Each concern has its file: encryption.tf, buckets.tf, landing_events.tf, status_events.tf, catalog.tf, emr.tf,
# glue.tf, airflow.tf.

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
  # local.tables, the Glue tables of sql/ddl, is in tables.tf.json: generated from sql/ddl (make infra-tables).
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
  }
}
