# ---------------------------------------------------------------------------------------------------------------
# Airflow: what the DAG may do, as one managed policy for whichever Airflow runs it (the MWAA module below,
# or an Airflow of your own: attach `airflow_policy_arn` to its role).
# ---------------------------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "airflow" {
  statement {
    sid       = "ConsumeLandingEvents"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.landing.arn]
  }

  statement {
    sid = "RunSparkJobs"
    actions = [
      "emr-serverless:GetApplication", "emr-serverless:StartApplication", "emr-serverless:StartJobRun",
      "emr-serverless:GetJobRun", "emr-serverless:CancelJobRun",
    ]
    resources = [aws_emrserverless_application.this.arn, "${aws_emrserverless_application.this.arn}/jobruns/*"]
  }

  statement {
    sid       = "HandTheJobRoleToEmrServerless"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.emr_job.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["emr-serverless.amazonaws.com"]
    }
  }

  statement {
    sid = "RunTheGlueJob"
    actions = [
      "glue:GetJob", "glue:StartJobRun", "glue:GetJobRun", "glue:BatchStopJobRun",
    ]
    resources = [aws_glue_job.ingestion.arn]
  }

  # The jobs' reports and the ingestions records (a batch that stopped early is answered from its files' records).
  statement {
    sid     = "ReadJobReports"
    actions = ["s3:GetObject"]
    resources = [
      "${module.lake_bucket.arn}/${var.lake_prefix}/_reports/*",
      "${module.lake_bucket.arn}/${var.lake_prefix}/curated/ingestions/*",
    ]
  }

  # The inbox is listed; and a missing report, receipt or record must read as 404 (not 403), which S3 answers
  # only to a caller that may list the bucket. Without a condition: S3 gives GetObject no s3:prefix to match.
  statement {
    sid       = "ListTheInboxAndTellAMissingObjectFromAForbiddenOne"
    actions   = ["s3:ListBucket"]
    resources = [module.lake_bucket.arn]
  }

  # The lake's control objects, written with conditional PUTs: the writer lease, each upload's receipt (written
  # once), the inbox of received uploads, and each batch's list of files.
  statement {
    sid     = "ReceiveUploadsAndHoldTheLakeLease"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [
      "${module.lake_bucket.arn}/${var.lake_prefix}/_lease.json",
      "${module.lake_bucket.arn}/${var.lake_prefix}/_uploads/*",
      "${module.lake_bucket.arn}/${var.lake_prefix}/_inbox/*",
      "${module.lake_bucket.arn}/${var.lake_prefix}/_batches/*",
    ]
  }

  # The ingestions record of an upload that never reached a Spark job (an unsupported file, a batch that failed
  # before it was reached): a Delta append, one data file and one log entry (and a checkpoint every 100 commits).
  statement {
    sid       = "RecordFailedUploads"
    actions   = ["s3:PutObject"]
    resources = ["${module.lake_bucket.arn}/${var.lake_prefix}/curated/ingestions/*"]
  }

  # trips_maintain compacts, vacuums and checkpoints the Delta tables (under the lake's lease).
  statement {
    sid     = "MaintainTheLakeTables"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [
      "${module.lake_bucket.arn}/${var.lake_prefix}/curated/*",
      "${module.lake_bucket.arn}/${var.lake_prefix}/marts/*",
    ]
  }

  # trips_forget rewrites the raw copies without the erased lines and the touched route models estimated again,
  # and keeps its plan under _erasures/ until it has finished (the tables it rewrites are covered above).
  statement {
    sid     = "EraseFromTheRawCopiesAndRouteModels"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [
      "${module.lake_bucket.arn}/${var.lake_prefix}/raw/*",
      "${module.lake_bucket.arn}/${var.lake_prefix}/models/*",
      "${module.lake_bucket.arn}/${var.lake_prefix}/_erasures/*",
    ]
  }

  # ...then deletes the old versions the versioned bucket keeps of what it replaced, where erased data lived: only
  # under the tables, the route models, the raw copies and its plans, never the landing bucket's or anything else's.
  statement {
    sid     = "DeleteTheOldVersionsOfErasedData"
    actions = ["s3:DeleteObjectVersion"]
    resources = [
      "${module.lake_bucket.arn}/${var.lake_prefix}/curated/*",
      "${module.lake_bucket.arn}/${var.lake_prefix}/marts/*",
      "${module.lake_bucket.arn}/${var.lake_prefix}/models/*",
      "${module.lake_bucket.arn}/${var.lake_prefix}/raw/*",
      "${module.lake_bucket.arn}/${var.lake_prefix}/_erasures/*",
    ]
  }

  statement {
    sid       = "ListTheOldVersionsOfErasedData"
    actions   = ["s3:ListBucketVersions"]
    resources = [module.lake_bucket.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = [
        "${var.lake_prefix}/curated/*",
        "${var.lake_prefix}/marts/*",
        "${var.lake_prefix}/models/*",
        "${var.lake_prefix}/raw/*",
        "${var.lake_prefix}/_erasures/*",
      ]
    }
  }

  statement {
    sid       = "PublishStatusEvents"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.status.arn]
  }

  statement {
    sid       = "UseTheDeploymentKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_policy" "airflow" {
  name        = "${var.name}-airflow"
  description = "${var.name}: what the DAGs need (landing queue, the lake's control objects, EMR Serverless or Glue, reports, maintenance and erasure of the tables and raw copies, status topic)"
  policy      = data.aws_iam_policy_document.airflow.json
}

module "mwaa" {
  source = "./modules/mwaa"
  count  = var.create_mwaa ? 1 : 0

  name                = var.name
  airflow_version     = var.mwaa_airflow_version
  environment_class   = var.mwaa_environment_class
  subnet_ids          = var.mwaa_subnet_ids
  security_group_ids  = var.mwaa_security_group_ids
  kms_key_arn         = aws_kms_key.this.arn
  access_logs_bucket  = module.access_logs_bucket.id
  triplake_policy_arn = aws_iam_policy.airflow.arn
  triplake_settings   = local.triplake_settings
  force_destroy       = var.force_destroy
}
