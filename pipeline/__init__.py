"""The CodePipeline that deploys the cluster and every service on a merge to main."""
