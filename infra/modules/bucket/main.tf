# A private bucket as every triplake bucket must be: no public access, objects owned by the bucket owner,
# SSE-KMS by default, TLS-only, versioned, access-logged, and a lifecycle that never lets parts or old
# versions pile up. The access-log bucket is one too, with the two differences S3 imposes on it: SSE-S3 (server
# access logs cannot be delivered to an SSE-KMS bucket) and no access log of its own (it would log into itself).

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a per-team disaster-recovery choice; the lake is rebuilt from raw/ and the bucket is versioned.
  #checkov:skip=CKV2_AWS_62:Event notifications are configured by the caller where an event is consumed (the landing bucket's SQS notification).
  #checkov:skip=CKV_AWS_18:Every instance but the access-log bucket is access-logged (access_logs_bucket is set: tests/test_infra.py checks it); that one would log into itself.
  #checkov:skip=CKV_AWS_145:Every instance but the access-log bucket is SSE-KMS (kms_key_arn is set: tests/test_infra.py checks it); S3 delivers access logs only to SSE-S3.
  bucket        = var.name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null # one KMS call per object batch instead of per object: cheaper at 100M trips
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_logging" "this" {
  count = var.access_logs_bucket == null ? 0 : 1

  bucket        = aws_s3_bucket.this.id
  target_bucket = var.access_logs_bucket
  target_prefix = "${var.name}/"
}

moved {
  from = aws_s3_bucket_logging.this
  to   = aws_s3_bucket_logging.this[0]
}

locals {
  # Every rule aborts incomplete multipart uploads and expires old versions; the first one covers every object.
  lifecycle_rules = concat(
    [{ id = "every-object", prefix = "", transition_days = null, transition_storage_class = null, expiration_days = null }],
    var.lifecycle_rules,
  )
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  dynamic "rule" {
    for_each = local.lifecycle_rules

    content {
      id     = rule.value.id
      status = "Enabled"

      filter {
        prefix = rule.value.prefix
      }

      abort_incomplete_multipart_upload {
        days_after_initiation = 7
      }

      noncurrent_version_expiration {
        noncurrent_days = var.noncurrent_version_expiration_days
      }

      dynamic "transition" {
        for_each = rule.value.transition_days == null ? [] : [rule.value.transition_days]

        content {
          days          = transition.value
          storage_class = rule.value.transition_storage_class
        }
      }

      dynamic "expiration" {
        for_each = rule.value.expiration_days == null ? [] : [rule.value.expiration_days]

        content {
          days = expiration.value
        }
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = var.extra_policy_statements

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.this.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}
