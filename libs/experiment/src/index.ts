/**
 * @posttrain/experiment: the demo and the experiments on the embedded task,
 * as plain functions with progress events: task data, a tiny base model
 * pretrained from scratch, SFT (and its data-size sweep), a reward model, DPO
 * from SFT, GRPO from SFT and from base over the serving tier, each evaluated (answer accuracy and format rate, preference
 * ranking, output entropy); a results table, the seeds' claims with their
 * numbers, and one report.html for the whole run. Also the evaluation
 * functions behind `posttrain eval`.
 *
 * @example
 * ```ts
 * import { pipelinePlan, runPipeline, writePipelineArtifacts, formatResultsMarkdown, pipelineProgress } from '@posttrain/experiment';
 * const result = await runPipeline(pipelinePlan('demo', { quick: true, seed: 0 }), 'runs/demo', { onEvent: pipelineProgress(process.stderr) });
 * const paths = writePipelineArtifacts(result, formatResultsMarkdown(result));
 * console.log(result.claims, paths.report);
 * ```
 */
export { pipelinePlan } from './pipeline-plan';
export type { PipelinePlan, TrainSettings } from './pipeline-plan';
export { runPipeline, pipelineStages } from './run-pipeline';
export { PipelineCancelledError } from './pipeline-types';
export type { Estimate, PipelineEvent, PipelineResult, RunPipelineOptions, StageOutcome, ModelEvaluation, RlCurve } from './pipeline-types';
export { firstReaching, runRlStage } from './run-rl-stage';
export type { GrpoSettings, PpoSettings, RlPoint, RlStageOptions, RlStageRun, ServiceLauncher } from './run-rl-stage';
export { assessClaims, atLeast, atMost, CLAIM_1_WITHOUT_SWEEP, CLAIMS, claimInputs, gainMargin, judgeClaims, marginalGains, pairedDifference, poolClaimInputs, poolEstimates } from './assess-claims';
export type { Check, Claim, ClaimInputs, Verdict } from './assess-claims';
export { claimsMarkdown, formatResultsMarkdown, formatTextTable, modelTable, seedSummaryTable, stageTable } from './results-table';
export { barChartSvg, claimCharts, pipelineRecords, readResultsJson, renderPipelineReport, writePipelineArtifacts } from './pipeline-report';
export type { BarChart, ClaimChart, ClaimPlot } from './pipeline-report';
export { pipelineProgress } from './pipeline-progress';
export type { PipelineProgressOptions } from './pipeline-progress';
export { readEvalData, EvalDataError } from './read-eval-data';
export { selectFailedPrompts, writeFailedPrompts, writeSelectedLines } from './select-failed-prompts';
export type { FailedPromptSelection, FailedPromptsFile, SelectFailedPromptsOptions } from './select-failed-prompts';
export type { AnswerItem, EvalData } from './read-eval-data';
export { evaluateAnswers } from './evaluate-answers';
export type { AnswerEvaluation, CompleteFn, EvaluateAnswersOptions } from './evaluate-answers';
export { evaluatePreferences, meanAndStderr, measureConcentration, measureStyle, modelCompleteFn, pairLogProbs, softmaxEntropy, tokenizePairs } from './model-evaluation';
export type { Concentration, ConcentrationSettings, GenerationSettings, PairLogProbs, PreferenceEvaluation, StyleMeasure } from './model-evaluation';
export { baseContinuationConfig, baseModelCard, baseModelPlan, basePlanSteps, baseQuestionsConfig, baseRunConfig, baseTaskOptions, buildBaseModel, measureCompetence, readCardRecord, writeAskedCorpus } from './base-model';
export type { BaseModelCardRecord, BaseModelPlan, BaseModelResult, BuildBaseModelOptions, CompetenceResult } from './base-model';
