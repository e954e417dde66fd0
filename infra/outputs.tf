output "triplake_settings" {
  description = "Every TRIPLAKE_* setting of this deployment, for the Airflow that runs the DAG and for the triplake CLI."
  value       = local.triplake_settings
}

output "triplake_settings_env" {
  description = "The same settings as `export NAME='value'` lines: eval \"$(terraform output -raw triplake_settings_env)\"."
  value       = join("", [for name, value in local.triplake_settings : "export ${name}='${value}'\n"])
}

output "landing_bucket" {
  description = "Upload trips here, under the landing prefix."
  value       = module.landing_bucket.id
}

output "lake_bucket" {
  description = "Bucket of the lake, the Spark package and Athena's results."
  value       = module.lake_bucket.id
}

output "package_uri" {
  description = "Where `make package` output goes (aws s3 sync .local/package <package_uri>)."
  value       = local.triplake_settings.TRIPLAKE_EMR_PACKAGE_URI
}

output "spark_jobs_image_repository" {
  description = "Push the jobs' EMR Serverless image here (infra/emr-image/Dockerfile), then set emr_image_tag."
  value       = aws_ecr_repository.spark_jobs.repository_url
}

output "status_queue_url" {
  description = "SQS queue that receives every status event (null when create_status_queue is false)."
  value       = var.create_status_queue ? aws_sqs_queue.status_events[0].url : null
}

output "landing_dead_letter_queue_url" {
  description = "Landing events the DAG's watcher could not take."
  value       = aws_sqs_queue.landing_dead_letter.url
}

output "airflow_policy_arn" {
  description = "Attach to the role of an Airflow you run yourself (MWAA gets it attached)."
  value       = aws_iam_policy.airflow.arn
}

output "kms_key_arn" {
  description = "Key of the deployment (buckets, queues, topic, Athena results)."
  value       = aws_kms_key.this.arn
}

output "mwaa_webserver_url" {
  description = "Airflow UI of the MWAA environment (null without create_mwaa)."
  value       = var.create_mwaa ? module.mwaa[0].webserver_url : null
}

output "mwaa_dags_bucket" {
  description = "Bucket of the MWAA DAG folder (null without create_mwaa)."
  value       = var.create_mwaa ? module.mwaa[0].dags_bucket : null
}
