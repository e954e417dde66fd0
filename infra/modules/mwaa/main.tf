# An Amazon MWAA (Airflow 3) environment that runs the trips_ingest DAG: its bucket (DAG folder,
# requirements.txt, startup.sh with the TRIPLAKE_* settings), its execution role (MWAA's own needs plus the
# triplake policy) and the environment itself, private, with every log on.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  arn_prefix = "arn:${local.partition}"
}

module "dags_bucket" {
  source = "../bucket"

  name               = "${var.name}-airflow-${local.account_id}"
  kms_key_arn        = var.kms_key_arn
  access_logs_bucket = var.access_logs_bucket
  force_destroy      = var.force_destroy
}

resource "aws_s3_object" "requirements" {
  bucket       = module.dags_bucket.id
  key          = "requirements.txt"
  content      = templatefile("${path.module}/requirements.txt.tftpl", { airflow_version = var.airflow_version })
  content_type = "text/plain"
}

resource "aws_s3_object" "startup" {
  bucket       = module.dags_bucket.id
  key          = "startup.sh"
  content      = templatefile("${path.module}/startup.sh.tftpl", { settings = var.triplake_settings })
  content_type = "text/x-sh"
}

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# What MWAA itself needs (its documented execution-role policy), scoped to this environment.
data "aws_iam_policy_document" "mwaa" {
  statement {
    sid       = "PublishEnvironmentMetrics"
    actions   = ["airflow:PublishMetrics"]
    resources = ["${local.arn_prefix}:airflow:${local.region}:${local.account_id}:environment/${var.name}"]
  }

  statement {
    sid       = "ReadTheDagBucket"
    actions   = ["s3:GetObject*", "s3:GetBucket*", "s3:List*"]
    resources = [module.dags_bucket.arn, "${module.dags_bucket.arn}/*"]
  }

  statement {
    sid = "WriteEnvironmentLogs"
    actions = [
      "logs:CreateLogStream", "logs:CreateLogGroup", "logs:PutLogEvents", "logs:GetLogEvents",
      "logs:GetLogRecord", "logs:GetLogGroupFields", "logs:GetQueryResults",
    ]
    resources = ["${local.arn_prefix}:logs:${local.region}:${local.account_id}:log-group:airflow-${var.name}-*"]
  }

  statement {
    sid       = "PutEnvironmentMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData supports no resource-level permission

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["AmazonMWAA"]
    }
  }

  statement {
    sid = "UseTheCeleryQueue"
    actions = [
      "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
      "sqs:ReceiveMessage", "sqs:SendMessage",
    ]
    resources = ["${local.arn_prefix}:sqs:${local.region}:*:airflow-celery-*"]
  }

  statement {
    sid       = "UseTheKeyThroughSqsAndS3"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:Encrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringLike"
      variable = "kms:ViaService"
      values   = ["sqs.${local.region}.amazonaws.com", "s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-mwaa"
  assume_role_policy = data.aws_iam_policy_document.trust.json
}

resource "aws_iam_role_policy" "mwaa" {
  name   = "${var.name}-mwaa"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.mwaa.json
}

resource "aws_iam_role_policy_attachment" "triplake" {
  role       = aws_iam_role.this.name
  policy_arn = var.triplake_policy_arn
}

resource "aws_mwaa_environment" "this" {
  name                   = var.name
  airflow_version        = var.airflow_version
  environment_class      = var.environment_class
  execution_role_arn     = aws_iam_role.this.arn
  kms_key                = var.kms_key_arn
  source_bucket_arn      = module.dags_bucket.arn
  dag_s3_path            = "dags/"
  requirements_s3_path   = aws_s3_object.requirements.key
  startup_script_s3_path = aws_s3_object.startup.key
  # The versions make MWAA pick up a changed requirements.txt or startup.sh on the next apply.
  requirements_s3_object_version   = aws_s3_object.requirements.version_id
  startup_script_s3_object_version = aws_s3_object.startup.version_id
  webserver_access_mode            = "PRIVATE_ONLY"

  network_configuration {
    security_group_ids = var.security_group_ids
    subnet_ids         = var.subnet_ids
  }

  logging_configuration {
    dag_processing_logs {
      enabled   = true
      log_level = "INFO"
    }

    scheduler_logs {
      enabled   = true
      log_level = "INFO"
    }

    task_logs {
      enabled   = true
      log_level = "INFO"
    }

    webserver_logs {
      enabled   = true
      log_level = "INFO"
    }

    worker_logs {
      enabled   = true
      log_level = "INFO"
    }
  }

  depends_on = [aws_iam_role_policy.mwaa, aws_iam_role_policy_attachment.triplake]
}
