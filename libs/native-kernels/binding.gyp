{
  "targets": [
    {
      "target_name": "posttrain_native",
      "sources": ["src/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags_cc": ["-O3", "-std=c++17", "-ffp-contract=off"],
      "conditions": [
        ["OS=='mac'", {
          "defines": ["POSTTRAIN_ACCELERATE", "ACCELERATE_NEW_LAPACK"],
          "libraries": ["-framework Accelerate"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17", "-ffp-contract=off"], "MACOSX_DEPLOYMENT_TARGET": "11.0" }
        }],
        ["OS!='mac'", {
          "libraries": ["-lopenblas"]
        }]
      ]
    }
  ]
}
