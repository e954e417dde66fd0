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
