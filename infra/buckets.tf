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
