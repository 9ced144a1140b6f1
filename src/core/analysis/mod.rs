//! Analysis model and assessment with the semantics of Argo Rollouts AnalysisTemplates.
