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
