output "environment_name" {
  description = "Name of the MWAA environment."
  value       = aws_mwaa_environment.this.name
}

output "webserver_url" {
  description = "Airflow UI of the environment."
  value       = aws_mwaa_environment.this.webserver_url
}

output "dags_bucket" {
  description = "Bucket MWAA reads the DAG folder, requirements.txt and startup.sh from."
  value       = module.dags_bucket.id
}

output "execution_role_arn" {
  description = "Role the environment's tasks run as."
  value       = aws_iam_role.this.arn
}
