# ---------------------------------------------------------------------------------------------------------------
# Buckets: landing (users upload), lake (raw copies, curated tables, marts, models, Athena results, the Spark
# package) and the access-log bucket both of them log to.
# ---------------------------------------------------------------------------------------------------------------

module "landing_bucket" {
  source = "./modules/bucket"

  name               = local.landing_bucket
  kms_key_arn        = aws_kms_key.this.arn
  access_logs_bucket = module.access_logs_bucket.id
  force_destroy      = var.force_destroy
  # The landing bucket is an inbox: the lake keeps a raw copy of every upload it received (which an erasure
  # rewrites), and an upload never received waits in the dead-letter queue for 14 days at most. So uploads expire,
  # and what an erasure took from the lake is gone from here too within upload_retention_days (plus the days a
  # noncurrent version is kept).
  lifecycle_rules = [
    { id = "expire-uploads", prefix = var.landing_prefix, expiration_days = var.upload_retention_days },
  ]
}

module "lake_bucket" {
  source = "./modules/bucket"

  name               = local.lake_bucket
  kms_key_arn        = aws_kms_key.this.arn
  access_logs_bucket = module.access_logs_bucket.id
  force_destroy      = var.force_destroy
  # Nothing under _staging/ expires: an interrupted ingestion's intent is what the next writer rolls it back from,
  # however long the lake stays idle, and the jobs delete every note they no longer need themselves.
  lifecycle_rules = [
    { id = "archive-raw-copies", prefix = "${var.lake_prefix}/raw/", transition_days = var.raw_archive_after_days },
    { id = "expire-athena-results", prefix = local.athena_results, expiration_days = var.athena_results_expiration_days },
  ]
}

module "access_logs_bucket" {
  source = "./modules/bucket"

  name          = local.access_logs_bucket
  force_destroy = var.force_destroy
  lifecycle_rules = [
    { id = "expire-access-logs", prefix = "", expiration_days = 365 },
  ]
  extra_policy_statements = [data.aws_iam_policy_document.access_log_delivery.json]
}

data "aws_iam_policy_document" "access_log_delivery" {
  statement {
    sid       = "S3ServerAccessLogsOfThisAccount"
    actions   = ["s3:PutObject"]
    resources = ["arn:aws:s3:::${local.access_logs_bucket}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The access-log bucket was written out here before it was an instance of the module.
moved {
  from = aws_s3_bucket.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket.this
}
moved {
  from = aws_s3_bucket_public_access_block.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_public_access_block.this
}
moved {
  from = aws_s3_bucket_ownership_controls.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_ownership_controls.this
}
moved {
  from = aws_s3_bucket_server_side_encryption_configuration.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_server_side_encryption_configuration.this
}
moved {
  from = aws_s3_bucket_versioning.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_versioning.this
}
moved {
  from = aws_s3_bucket_lifecycle_configuration.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_lifecycle_configuration.this
}
moved {
  from = aws_s3_bucket_policy.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_policy.this
}
