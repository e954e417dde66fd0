# ---------------------------------------------------------------------------------------------------------------
# Spark on AWS Glue (TRIPLAKE_SPARK_RUNNER=glue): one Glue job runs one file's ingestion, the same entry point and
# zip EMR Serverless runs (`make package`); the DAG starts it with the amazon provider's GlueJobOperator. Its role
# reads and writes exactly what the EMR job role does, and writes its own logs.
# ---------------------------------------------------------------------------------------------------------------

resource "aws_glue_security_configuration" "this" {
  name = var.name

  encryption_configuration {
    cloudwatch_encryption {
      cloudwatch_encryption_mode = "SSE-KMS"
      kms_key_arn                = aws_kms_key.this.arn
    }

    job_bookmarks_encryption {
      job_bookmarks_encryption_mode = "CSE-KMS"
      kms_key_arn                   = aws_kms_key.this.arn
    }

    s3_encryption {
      s3_encryption_mode = "SSE-KMS"
      kms_key_arn        = aws_kms_key.this.arn
    }
  }
}

resource "aws_glue_job" "ingestion" {
  name                   = local.glue_job_name
  description            = "${var.name}: one uploaded file's ingestion (ingest, routes, weekly counts and the commit)"
  role_arn               = aws_iam_role.glue_job.arn
  glue_version           = var.glue_version
  worker_type            = var.glue_worker_type
  number_of_workers      = var.glue_number_of_workers
  security_configuration = aws_glue_security_configuration.this.name
  max_retries            = 0   # a failed ingestion is rolled back and announced; the user decides to send it again
  timeout                = 120 # minutes; a 10M-row file takes a few

  command {
    name            = "glueetl"
    script_location = "s3://${module.lake_bucket.id}/${local.package_prefix}/ingestion.py"
    python_version  = "3"
  }

  default_arguments = {
    "--job-language"                     = "python"
    "--enable-continuous-cloudwatch-log" = "true"
  }

  execution_property {
    max_concurrent_runs = 1 # the lake has one writer at a time (its lease); more runs would only wait
  }
}

data "aws_iam_policy_document" "glue_job_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "glue_job" {
  source_policy_documents = [data.aws_iam_policy_document.emr_job.json] # the same data, declared once

  statement {
    sid       = "WriteTheJobsLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"]
    resources = ["arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:/aws-glue/*"]
  }
}

resource "aws_iam_role" "glue_job" {
  name               = "${var.name}-glue-job"
  assume_role_policy = data.aws_iam_policy_document.glue_job_trust.json
}

resource "aws_iam_role_policy" "glue_job" {
  name   = "${var.name}-glue-job"
  role   = aws_iam_role.glue_job.id
  policy = data.aws_iam_policy_document.glue_job.json
}
