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
