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

  # The jobs need Python 3.11 and deltalake, which the release's own image lacks: until the image is built and
  # pushed (docs/deploy.md) and its tag set here, a job run stops at its first import of deltalake.
  dynamic "image_configuration" {
    for_each = var.emr_image_tag == null ? [] : [var.emr_image_tag]
    content {
      image_uri = "${aws_ecr_repository.spark_jobs.repository_url}:${image_configuration.value}"
    }
  }
}

# The jobs' image (infra/emr-image/Dockerfile): tags never move, every push is scanned, the layers are encrypted with
# the deployment's key, and only this application pulls.
resource "aws_ecr_repository" "spark_jobs" {
  name                 = "${var.name}-spark-jobs"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.this.arn
  }
}

resource "aws_ecr_lifecycle_policy" "spark_jobs" {
  repository = aws_ecr_repository.spark_jobs.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last ten images: the running one and some to go back to."
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 10 }
      action       = { type = "expire" }
    }]
  })
}

data "aws_iam_policy_document" "spark_jobs_image_pull" {
  statement {
    sid     = "TheApplicationPullsTheJobsImage"
    actions = ["ecr:BatchGetImage", "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer"]

    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [aws_emrserverless_application.this.arn]
    }
  }
}

resource "aws_ecr_repository_policy" "spark_jobs" {
  repository = aws_ecr_repository.spark_jobs.name
  policy     = data.aws_iam_policy_document.spark_jobs_image_pull.json
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
