#!/usr/bin/python3
"""A Python client of the posttrain services: the proof that other languages can call them.

The sampler must serve a model: the client generates two completions and scores them.

Uses only Debian's python3-grpcio and message classes that Debian's protoc
generates from protos/ (no generated gRPC stubs: calls go through the generic
channel API with each method's path). Prints one JSON object with what it saw.

usage: posttrain_client.py --protos DIR --gen DIR --health-proto FILE
                           --sampler ADDR --reference ADDR --reward ADDR --trainer ADDR
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys


def generate(protos_dir, gen_dir, health_proto):
    """protoc --python_out for the posttrain contracts and grpc.health.v1."""
    os.makedirs(gen_dir, exist_ok=True)
    files = sorted(os.path.relpath(p, protos_dir) for p in glob.glob(os.path.join(protos_dir, "posttrain", "v1", "*.proto")))
    subprocess.run(["protoc", f"-I{protos_dir}", "-I/usr/include", f"--python_out={gen_dir}", *files], check=True)
    # The health proto is generated under another module path so that it does not
    # shadow the installed `grpc` package; its proto package stays grpc.health.v1.
    health_dir = os.path.join(gen_dir, "interop_health")
    os.makedirs(health_dir, exist_ok=True)
    shutil.copy(health_proto, os.path.join(health_dir, "health.proto"))
    subprocess.run(["protoc", f"-I{gen_dir}", f"--python_out={gen_dir}", "interop_health/health.proto"], check=True)
    for d in (os.path.join(gen_dir, "posttrain"), os.path.join(gen_dir, "posttrain", "v1"), health_dir):
        open(os.path.join(d, "__init__.py"), "a").close()


def main():
    ap = argparse.ArgumentParser()
    for flag in ("protos", "gen", "health-proto", "sampler", "reference", "reward", "trainer"):
        ap.add_argument(f"--{flag}", required=True)
    args = ap.parse_args()
    generate(args.protos, args.gen, args.health_proto)
    sys.path.insert(0, args.gen)

    import grpc
    from interop_health import health_pb2
    from posttrain.v1 import common_pb2, logprobs_pb2, policy_sampler_pb2, reference_model_pb2, reward_scorer_pb2, rewards_pb2, trainer_pb2

    def unary(addr, path, request, response_cls):
        with grpc.insecure_channel(addr) as channel:
            call = channel.unary_unary(path, request_serializer=type(request).SerializeToString, response_deserializer=response_cls.FromString)
            return call(request, timeout=10)

    out = {"health": {}, "calls": {}}
    addrs = {"policy-sampler": args.sampler, "reference": args.reference, "reward": args.reward, "trainer": args.trainer}
    for name, addr in addrs.items():
        res = unary(addr, "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest(service=""), health_pb2.HealthCheckResponse)
        out["health"][name] = health_pb2.HealthCheckResponse.ServingStatus.Name(res.status)

    info = unary(args.sampler, "/posttrain.v1.PolicySampler/GetInfo", common_pb2.GetInfoRequest(), policy_sampler_pb2.PolicySamplerInfo)
    out["calls"]["sampler.GetInfo"] = {"weights_version": info.weights_version, "max_new_tokens": info.max_new_tokens, "replica_id": info.replica_id}

    ref = unary(args.reference, "/posttrain.v1.ReferenceModel/GetInfo", common_pb2.GetInfoRequest(), reference_model_pb2.ReferenceModelInfo)
    out["calls"]["reference.GetInfo"] = {"max_batch_sequences": ref.max_batch_sequences, "replica_id": ref.replica_id}

    rinfo = unary(args.reward, "/posttrain.v1.RewardScorer/GetInfo", common_pb2.GetInfoRequest(), reward_scorer_pb2.RewardScorerInfo)
    out["calls"]["reward.GetInfo"] = {"supported_rules": list(rinfo.supported_rules), "max_batch_items": rinfo.max_batch_items}

    # Score two completions with a verifiable rule (numeric answer after "Answer:") plus a format bonus.
    extraction = rewards_pb2.AnswerExtraction(mode=rewards_pb2.EXTRACTION_MODE_AFTER_MARKER, pattern="Answer:")
    score_req = reward_scorer_pb2.ScoreRequest(
        items=[
            reward_scorer_pb2.ScoreItem(id="right", prompt="What is 12+7?", completion="12+7=19\nAnswer: 19", ground_truth="19"),
            reward_scorer_pb2.ScoreItem(id="wrong", prompt="What is 12+7?", completion="12+7=18\nAnswer: 18", ground_truth="19"),
        ],
        components=[
            rewards_pb2.RewardComponent(name="correct", weight=1.0, numeric_match=rewards_pb2.NumericMatchRule(extraction=extraction)),
            rewards_pb2.RewardComponent(name="format", weight=0.25, regex=rewards_pb2.RegexRule(pattern="Answer: -?\\d+$")),
        ],
    )
    scored = unary(args.reward, "/posttrain.v1.RewardScorer/Score", score_req, reward_scorer_pb2.ScoreResponse)
    out["calls"]["reward.Score"] = {s.id: {"reward": s.reward, "components": {c.name: c.weighted for c in s.components}} for s in scored.scores}

    # Generate two completions on the sampler (a server stream), then score them on the reward service.
    gen_req = policy_sampler_pb2.GenerateRequest(
        prompts=[common_pb2.Prompt(text="12+7=")],
        n=2,
        sampling=common_pb2.SamplingParams(temperature=1.0, max_new_tokens=8, seed=3, logprobs=True),
    )
    with grpc.insecure_channel(args.sampler) as channel:
        call = channel.unary_stream("/posttrain.v1.PolicySampler/Generate", request_serializer=policy_sampler_pb2.GenerateRequest.SerializeToString, response_deserializer=policy_sampler_pb2.GenerateResponse.FromString)
        completions = sorted((c for res in call(gen_req, timeout=60) for c in res.completions), key=lambda c: c.sample_index)
    out["calls"]["sampler.Generate"] = [
        {
            "sample_index": c.sample_index,
            "text": c.text,
            "token_ids": list(c.token_ids),
            "prompt_token_ids": list(c.prompt_token_ids),
            "logprobs": list(c.logprobs),
            "finish_reason": common_pb2.FinishReason.Name(c.finish_reason),
            "weights_version": c.weights_version,
        }
        for c in completions
    ]
    gen_score_req = reward_scorer_pb2.ScoreRequest(
        items=[reward_scorer_pb2.ScoreItem(id=f"sample{c.sample_index}", prompt="12+7=", completion=c.text) for c in completions],
        components=[
            rewards_pb2.RewardComponent(name="brevity", weight=1.0, length_penalty=rewards_pb2.LengthPenaltyRule(target_length=2, penalty_per_unit=0.1, unit=rewards_pb2.LENGTH_UNIT_CHARACTERS)),
        ],
    )
    gen_scored = unary(args.reward, "/posttrain.v1.RewardScorer/Score", gen_score_req, reward_scorer_pb2.ScoreResponse)
    out["calls"]["reward.Score.generated"] = {s.id: s.reward for s in gen_scored.scores}

    runs = unary(args.trainer, "/posttrain.v1.Trainer/ListRuns", trainer_pb2.ListRunsRequest(page_size=10), trainer_pb2.ListRunsResponse)
    out["calls"]["trainer.ListRuns"] = {"runs": len(runs.runs), "next_page_token": runs.next_page_token}

    # Malformed input: an empty batch, and a negative token id.
    errors = {}
    for label, addr, req in (
        ("reference.ComputeLogProbs.empty", args.reference, logprobs_pb2.LogProbsRequest()),
        ("reference.ComputeLogProbs.negative_id", args.reference, logprobs_pb2.LogProbsRequest(sequences=[logprobs_pb2.LogProbsSequence(prompt_ids=[1], completion_ids=[2, -5])])),
    ):
        try:
            unary(addr, "/posttrain.v1.ReferenceModel/ComputeLogProbs", req, logprobs_pb2.LogProbsResponse)
            errors[label] = {"code": "OK"}
        except grpc.RpcError as e:
            errors[label] = {"code": e.code().name, "details": e.details()}
    out["errors"] = errors
    print(json.dumps(out))


if __name__ == "__main__":
    main()
