# ---------------------------------------------------------------------------------------------------------------
# Status events: one message per RECEIVED / SUCCEEDED / FAILED, to email, HTTPS webhooks and an SQS queue.
# ---------------------------------------------------------------------------------------------------------------

resource "aws_sns_topic" "status" {
  name              = local.status_topic_name
  kms_master_key_id = aws_kms_key.this.arn
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.status_email_addresses)

  topic_arn = aws_sns_topic.status.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_sns_topic_subscription" "webhook" {
  for_each = toset(var.status_webhook_urls)

  topic_arn = aws_sns_topic.status.arn
  protocol  = "https"
  endpoint  = each.value
  # `triplake watch` confirms its subscription itself once the confirmation's signature checks out.
  endpoint_auto_confirms          = true
  confirmation_timeout_in_minutes = 2
}

resource "aws_sqs_queue" "status_events" {
  count = var.create_status_queue ? 1 : 0

  name                      = local.status_queue_name
  kms_master_key_id         = aws_kms_key.this.arn
  message_retention_seconds = 1209600
}

resource "aws_sqs_queue_policy" "status_events" {
  count = var.create_status_queue ? 1 : 0

  queue_url = aws_sqs_queue.status_events[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "OnlyTheStatusTopicSends"
      Effect    = "Allow"
      Principal = { Service = "sns.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.status_events[0].arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_sns_topic.status.arn } }
    }]
  })
}

resource "aws_sns_topic_subscription" "status_events" {
  count = var.create_status_queue ? 1 : 0

  topic_arn            = aws_sns_topic.status.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.status_events[0].arn
  raw_message_delivery = true # the body is the status JSON itself, `status` and `ingestion_id` message attributes
}
