"""Selection lists of the reference data directory (shared/data), so that the upstream path of
`synth assets fetch` picks the same files by name.

Generated once from the reference mirror's own manifests (cmu_mocap/index/clips_main.csv,
clothing/manifest.csv, backgrounds/manifest.csv); do not edit by hand. The lists record *which*
upstream files were chosen (the choice itself was made by eye, see each set's SOURCE.md); they
cannot say why, and re-encoded images fetched from upstream are not byte-identical to the mirror's.
"""
from __future__ import annotations



# CMU clip id, md5 and size in bytes of the original AMC file (byte-identical to mocap.cs.cmu.edu).
CMU_CLIPS = """
01_01 b7973935c359f26d8a12c683a85499b2 2198779
01_02 0c6bf40a2b7b92b1f350d038bb05e447 3466657
01_03 7ffa0be53948644268db2b1cd2a33acf 3596419
01_04 1796351a54818ba50248d1c8dd3b225f 3428168
01_05 1b9ec212f5de647a7589cbc587b65d8e 3492836
01_06 15903cc33ddf4ae573803459b7b76e81 4079312
01_07 d41a168ba4d1f14ccb372074109b71dd 3862799
01_08 feaab149d5a80bebca6aabe0f20e377f 2081152
01_09 e279a48b08c41ec238c1b6e26ea9a149 3384565
01_10 98a856d563812be5fbfb47d026041d3a 2601160
01_11 2eb0448ec6aa2bb6cf84e7241391650d 3711485
01_12 53478ef85b39ad92027d7839c40b7c0a 3265238
01_13 0e505e97fa17cc35babec8af22b9dff1 2694143
01_14 0b9ac0aea8cabc554cd61c2f5a8bd50b 1859668
06_12 fc4b18be1a590d6747c7ac741ed8e6d9 938376
06_13 74ef428e752ba4875074cf09c64de432 3769647
06_14 cc11f1f511447677a37cb3da49125a68 367531
06_15 935935681fbd2cd674c24e6e115b7bee 419382
13_11 c98044b651138c6207355e9fe8730585 321060
13_13 c4b7d65a5040a015eb2b8b027b3da3f9 338979
13_19 e8c2d8d6c35528d66616e2cad4dc34f4 329205
13_30 1e74d1484e7f73350c8aae3b8f18a2eb 1905096
13_31 5e20b61d0b80035b1a48be8890602695 2331566
13_32 f765ac46deeff8c1750928aee4c4dbdf 259786
13_39 09cf7e32e0f9e469501964c119ee63f6 272994
13_40 1dd98309b4cdd43dc4b1d41a13832b21 246311
14_06 27a0f533f7355e970b07986871807d77 4114578
14_14 e80329d07b6db985edbd81f3453d755d 3579548
14_20 009396ec374b6b4b6a9207403d59a6d9 3575679
16_02 640ab819c9ec017fdd17313fe0a8604e 359762
16_03 518ded4d37bbe01149e308b08119f0a5 314929
16_04 db335f2d7d75e2ea81ccde723b0376b2 292675
16_05 0ce887738b07eca3fc749bdac019f433 227308
16_06 e49723e82ae1f780c3a97d87431a61fc 312967
16_07 b6a58850b7c2353ce047096451af5f83 324913
16_08 a9963d568574dd38522ad8ca9fff90cf 184205
16_09 e3c646c6917509dbf970c50602ae8523 381730
16_10 c1db1aef71a69104cb43a2bba7fd1772 354514
16_11 5f090aff0a614505c9759fe4205f61cb 409346
16_12 b0ddfab1b0b4b6d68986ffac5c1d13c8 338071
16_13 2316840453b8ff341ebc233651f532f5 340807
16_14 f0c27b51f91a601516a4afe189ad0c64 364864
16_15 dfe4d3cec3ac2de8dfa6bc6926da9df2 361470
16_16 773d143279cdee91143b3d0a729d65e9 391680
16_17 4a9ccd713e3d65e41408a05e5d68b758 397812
16_18 acdf200484c35c55f23f02047b969348 399011
16_19 1cfeadce717ba9a2ff8ef9ad22009727 314301
16_20 5e2e602f5770ea2b3cb30758185ed551 385874
16_21 258075c682dc48416f89db2c3919363e 239932
16_22 8a49bf7f7cf2628c0641173f525a4f56 235754
16_23 b879add6a27d83aa406084eb6e355b34 229175
16_24 7771e8c1b1abc4725045842de2970262 227780
16_25 6e5350c2ded2683bb46a760e6385e04f 217933
16_26 0ee9ecb6698f7065f082fe5d5e1d16b7 206402
16_27 92eaadd367785dd366ddd93b7a83c92b 186383
16_28 76521e45b9482c7bbe701e922e0f5e02 207205
16_29 7b22bb6d05c49bad3973e0113fa86966 216358
16_30 37cbefa3755aa900c6a12284244a91e1 204157
16_31 acdb758ad813dcf0bc56c0b41d2e9512 325729
16_32 018996c1830d9ff81919ef8dabebd695 445446
16_33 0d875608b51544f7e163c699d6f00803 218766
16_34 67b5e7abd9896685b3bab62ee6d465b0 266684
16_36 c26e560ab11d269bc69674d00342aa0d 145032
16_37 6e6d12b37aeedc5cba03b92d85efff38 140937
16_38 995e12dd7437117c7d25f312f345d273 128616
16_39 d330b6fcc3a6d443c02be3f234594519 112866
16_40 8e9a3b9d04a89a0b535953c9a3ea8d8c 148754
16_41 9a4600966ea07eb3774066d4f59ab4b1 122670
16_42 a679345a588da6dde73d23680db58ff3 157675
16_43 6e8a4756c8ff7db358b691134e5eae51 161028
16_44 a6407e6a2358831ccb12f48b3d19c525 165733
16_45 11dc1d41236cc582af1c012aa128d671 103411
16_46 00a266b307074eb714d5ff5172dee55e 103974
16_47 92be14876cef56e8cea1ef40858af751 320335
16_48 c70b1c18a1888e41aa02dfead8b363b0 97960
16_49 531bd6dd6bf508b228b07f237fb65f8a 97252
16_50 a1b14b9b8dde0533d307b79c7afe83fb 99663
16_51 d21265653b0c03db55983a327cf28fb9 136400
16_52 9775483a577c805230e97107e051ca50 132237
16_53 35d7896f882c0535096dfef949402101 109591
16_54 e8b6ac3160148bb6d565ef9a694819e7 105714
16_55 a5fddf61f1c0dc82510e084d804d2a0c 138786
16_56 ef2d95df2c2e12b8fd169939521e6cf9 129765
16_57 7973e938cf8b5b66adb8bee1baaa3671 206152
49_03 3b28b9145a439226ea4dc9a0443eff9f 1163790
49_04 3e038defc6a40f399e7d483dee3534ec 193295
49_05 a709047d4dee7e97ac7b3773afd8241f 126035
49_09 d4d9c16176659171df52a92b14197732 1470067
49_10 0618a68ef59674c643810153bbd6767e 1092395
49_11 e7fc3f5a76b5189f258675ae3bc22c30 916736
49_12 3eedff8a30a81817ee2ccb47ef16fca6 874120
49_13 73a819ec982df4a4cb3eddd8f96a70ae 399985
49_14 1960b181f9ae5bc83808fd09d3f05a95 477121
49_15 1f04fa7d8e39130d94bf795656f1aaeb 723401
49_16 63dfa7b8f8019726a825efb605e8980e 867961
49_17 17d54a2b5de2cff47ae485be793bb3ad 578554
49_18 038b938c168295c624163e6c8cfd0623 849155
49_22 f2696c1af78f9906d860ed6982b4be93 991423
""".split("\n")[1:-1]


# Paths inside alexeygrigorev/clothing-dataset-small of the kept flat-lay garment photos.
CLOTHING_CC0 = """
validation/t-shirt/a9b25869-8ee5-4fbd-b3e8-e5067c5f73e7.jpg
train/t-shirt/e7090cf1-5f30-4dc6-b51b-27b82bd30015.jpg
train/t-shirt/651c0bd8-ee1b-4f39-8951-e8ea64671029.jpg
validation/t-shirt/8b89b0a3-2f5c-4dec-ab0d-04604fc9eeeb.jpg
train/t-shirt/f638fa1a-0b57-4492-9ef8-a9d9df1fe222.jpg
train/t-shirt/a40ef6c1-29e9-4a54-8f3b-01589d1092ba.jpg
train/t-shirt/18439dca-829b-4ea3-bb54-8ab017f369f4.jpg
validation/t-shirt/f84f31e8-449e-41e4-aab8-f874ac1ff31f.jpg
train/t-shirt/50c03b15-b03e-4b7f-bd52-6332eca1bea8.jpg
train/t-shirt/81134ec7-58c1-4d16-bf25-aac145860e5d.jpg
train/t-shirt/162e3320-b612-47c0-a521-88e916c5c8fd.jpg
train/t-shirt/75f763ed-319e-49e1-95e9-0b5e8088f935.jpg
train/t-shirt/6267b018-ed10-4c50-a3ca-4340f884222a.jpg
train/t-shirt/421fc54c-c5f8-48e8-8be5-c37c7bc70e0d.jpg
train/t-shirt/d5332d88-114a-49b4-9f60-23efb19f363f.jpg
validation/t-shirt/3861b881-90d1-446d-ad1a-8b93e96dc935.jpg
train/t-shirt/bf8654c3-da26-4b26-bfed-9682675ab8b6.jpg
test/t-shirt/db398f2d-24a3-4af1-9816-c269709a48b3.jpg
train/t-shirt/c171c43f-3a6d-4a5c-9aaa-fbed10502350.jpg
train/t-shirt/e3ea7bde-039f-4455-9705-0b24eb5100c2.jpg
train/t-shirt/310a4272-ce60-43b9-a83b-bfd4e566574e.jpg
train/t-shirt/3b258cc6-5d19-4fa2-b419-eae5e2afec70.jpg
train/t-shirt/362c02ba-fd5e-435b-b26e-5b9383aaca2d.jpg
train/t-shirt/248bed38-bb76-4d26-a510-26afa75dc811.jpg
train/t-shirt/c67fe1be-51c6-44d6-afed-42d411f75427.jpg
validation/t-shirt/07b294ee-9a04-4795-9af2-7a1c801e8db0.jpg
train/t-shirt/fbb54104-ee0f-4180-9216-2696f9df52a5.jpg
train/t-shirt/5bbe556b-67c3-434a-b91f-703cc7c0f453.jpg
train/t-shirt/f53fc50a-7ce8-49f0-89a0-6d8473e51955.jpg
test/t-shirt/58aaf4e2-5a92-4c59-9321-6b37e65dcc46.jpg
train/t-shirt/bc9b690a-7750-4d51-aa9d-1b596753b186.jpg
train/t-shirt/3905fdc1-953a-419b-8ff8-d5810bab935d.jpg
train/t-shirt/1963940a-8c6c-4f2e-b746-1422413a6926.jpg
train/t-shirt/13b58794-6daf-419a-94a7-97b7806e481e.jpg
train/t-shirt/ef2140de-3312-4c7a-85e8-a84ad24c1aee.jpg
train/t-shirt/7af726c0-5214-4f82-993e-ba6cffdf483b.jpg
test/t-shirt/0c024616-1289-4747-91da-71a4aedd4ced.jpg
train/t-shirt/0ba2d892-a1fb-4961-88a8-d77875b9f673.jpg
test/t-shirt/b18a958b-7b4b-4368-a7b3-3357d7fa6c3b.jpg
train/t-shirt/c226f48f-ae09-425f-bf2c-6e4c7dd56b52.jpg
train/t-shirt/4c5766ba-bad6-4703-877b-140991c8af87.jpg
train/t-shirt/64af0d68-9e87-4a52-82d8-67fb9ba9b2dd.jpg
test/t-shirt/05d01bf9-6ff5-4c5e-b946-b4ca004a125b.jpg
train/t-shirt/29d44695-c6b6-4b76-8ac9-12032990ba5f.jpg
test/t-shirt/b7d4f382-14f4-40f2-8fce-f32b08f0c553.jpg
train/t-shirt/7238d6b4-f80d-461e-bebd-c134ac98752d.jpg
train/t-shirt/5d9384e4-b44b-4ef9-a770-a4933e674e33.jpg
train/t-shirt/1fae982c-5248-4f9f-8140-841e3110e37c.jpg
train/t-shirt/79e8d176-99e8-4f89-88f5-d26d957405a2.jpg
train/t-shirt/f93d2fbe-ad25-4491-bd78-bc292ab6589d.jpg
validation/shirt/e7ec7ab5-494f-417c-a0ce-c7bbef93d745.jpg
train/shirt/96092dbf-6927-417a-a34d-3903a21fb20b.jpg
train/shirt/8f51df31-a6c1-400a-9dbd-1fb1b9f85476.jpg
train/shirt/0999145e-6b23-4bee-8117-dbf4aaa83f1a.jpg
train/shirt/444fbfed-93d4-4cc7-9fcf-9ec20e3a970c.jpg
train/shirt/0a77dbed-06fb-4ba7-b1e3-24f3a41498bc.jpg
validation/shirt/b09b92a8-4e52-4ac6-946b-6b8fbf83898f.jpg
train/shirt/56f6728e-2e36-4f1e-8e0e-47c85f932b83.jpg
train/shirt/6aafcce9-797e-46dd-852d-4e991aafe5ba.jpg
train/shirt/10e51a41-3729-472e-b288-f3b8f895577a.jpg
train/shirt/45279e1f-82af-4fe3-b0ad-2bd73acbc26a.jpg
train/shirt/38186e67-f333-4fd1-9817-039ff3d2170c.jpg
train/shirt/ce367218-82f0-47ca-87cd-7b3bc173104c.jpg
test/shirt/5089843a-ecf8-4cb6-8f35-587f19125046.jpg
train/shirt/c4fb57e1-2d71-495e-881f-e85a7b40a0d9.jpg
train/shirt/933b0a25-f1b7-41e4-95f4-6f1e76d11e69.jpg
train/shirt/10f589e4-fe32-4db5-a3a2-32337d1d42e9.jpg
train/shirt/e42d03be-f7f7-4540-813a-8f24a2e5d666.jpg
train/shirt/d7598ec7-0f4b-4b85-8fbf-f2a488ee73f8.jpg
train/shirt/d3445515-3989-4420-8ad0-21e7ccf118eb.jpg
train/shirt/a934396b-3a7e-468d-bbc8-38290dd06507.jpg
train/shirt/28936a35-8bc6-42b1-b7ed-a5d02aa994df.jpg
train/shirt/bdaf259c-a7e1-4c45-a6ea-472ffe4116ad.jpg
validation/shirt/a9fe576c-a408-4b3f-80de-d9cb04d36360.jpg
train/shirt/e2e8ba7f-f36b-4ccf-b116-b08265f2ee84.jpg
train/longsleeve/893c3f24-4bd7-45bc-995f-cb85847c92c5.jpg
train/longsleeve/aeb7fec7-cf52-49fd-9ad3-312127bd8d14.jpg
train/longsleeve/be6e7635-72da-438b-ac43-d7eaf3d64819.jpg
train/longsleeve/021bfd37-1620-4aac-916c-8575c4d3af6b.jpg
train/longsleeve/0098b1c0-bd39-41c2-a172-17066bc9fd26.jpg
train/longsleeve/1983f48a-882b-4bae-9eba-5f0373a317a7.jpg
test/longsleeve/fc34b591-392c-4ed8-8e26-71a386e0d9b3.jpg
train/longsleeve/38bf9790-f653-453b-96b4-72a298413eb7.jpg
train/longsleeve/8ffd288e-9502-48fe-87ab-23063659b275.jpg
train/longsleeve/ceaa1a39-4aa3-4492-a7ba-173a5f2a3fb8.jpg
train/longsleeve/2ccdf961-afe2-47a3-bf38-5e84ae6e9b0a.jpg
train/longsleeve/120db955-d975-4be6-b2d8-b09ab17e7b7c.jpg
train/longsleeve/1b66c18a-6866-4e0e-a580-f0e65a23bd10.jpg
train/longsleeve/dd3f4caa-ecbf-477f-b75c-0e1746b716f9.jpg
train/longsleeve/9bfe2ccf-a192-4ab3-baba-0e07016e2428.jpg
validation/longsleeve/eb094af6-3106-48a1-9ccf-0fff46012d86.jpg
train/longsleeve/bfac0100-acbf-4ef1-9455-680f09e170db.jpg
train/longsleeve/0ff16b4c-4d65-45ed-bcc3-ee9b325ee011.jpg
train/longsleeve/9e803923-d851-47e6-8376-6e557abb6dcd.jpg
train/longsleeve/8f576f1a-839d-4fb2-a224-a4700b2d05da.jpg
train/longsleeve/0814ab03-e394-403a-9718-5ee0ee19f150.jpg
train/longsleeve/0e20abb0-d56a-4f83-b254-9db70fb92794.jpg
train/longsleeve/68cca66a-f96c-48a1-863c-77455172be43.jpg
test/longsleeve/a9aa8ca4-d288-4bb0-a5da-c2af541743b0.jpg
train/longsleeve/fec3f552-e894-4737-8867-a9447f68f6be.jpg
test/longsleeve/c44195bb-66c5-44b1-806a-aebd703f0298.jpg
train/longsleeve/5e07f77d-8060-4613-978d-add0a20973cb.jpg
train/longsleeve/3a8bad5b-d630-4413-b5cf-badb68cbc2d0.jpg
train/longsleeve/6d89acf9-e8b0-4231-9915-2854adb7a223.jpg
train/longsleeve/a19f7f8a-81a9-4028-ba4f-a286ee16a751.jpg
train/longsleeve/ae3aacb8-9841-410e-9feb-54f083c1222c.jpg
train/longsleeve/53733341-2303-43a1-a402-7a6823314f4c.jpg
train/longsleeve/7614aedf-0a27-4ad8-973d-2a17a067d540.jpg
train/longsleeve/252363a7-81a6-41dc-b468-e009177ff176.jpg
train/longsleeve/2dc56ede-fae7-4a74-9ba1-e7084e21d142.jpg
train/outwear/8dd4871d-7522-4152-b837-cffb5f2cc261.jpg
train/outwear/6d57d841-f0f9-4aa2-971f-0149ce938319.jpg
test/outwear/f1784f1b-61c7-4bd8-9799-3bed700857bb.jpg
train/outwear/d750ad74-c300-4cec-9248-727163bd0ea5.jpg
validation/outwear/349cf35c-eaad-49af-b0c9-3c88b8d0afc1.jpg
train/outwear/c9b01527-4b8f-47e1-b80d-6d8bacea853f.jpg
train/outwear/05a71d78-84e9-46b5-bfd8-e30b22a84320.jpg
test/outwear/105c3674-f1d0-4fc6-8131-e53001670352.jpg
train/outwear/3395d7f5-fe79-448e-abec-fb6879feeddf.jpg
train/outwear/e9842306-b0f6-4053-a2fc-73c4cebe6d73.jpg
test/outwear/610bc298-714b-4a48-bffe-aedd8863cba8.jpg
test/outwear/b167f39f-eea8-4f69-9494-e2346bd7e2c5.jpg
test/outwear/1dcf0cd4-ca7e-46ac-90c7-ce465153a7f0.jpg
train/outwear/59927935-c092-4dce-97da-b55312183d61.jpg
test/outwear/c830bb15-ad3b-406a-ab50-4d30e5b95a41.jpg
train/outwear/9cca1f30-e4ed-4910-81ba-fd125607a4b7.jpg
train/outwear/c258578a-6d97-4514-91b5-7d146893756f.jpg
train/outwear/0d047b70-c53a-463d-946f-c8758c2af391.jpg
train/outwear/c7fed2fc-5dd4-4e43-a210-fce6c7e5c5eb.jpg
train/outwear/12e39792-ffb7-4b21-b62e-842a4cc9f2f3.jpg
train/pants/0a7e5fe0-d592-40e6-b9b8-75aac9a2d685.jpg
train/pants/6b2a4812-5f04-40ca-aba3-f66607934a7e.jpg
train/pants/9a87b9e5-ac39-4b3a-b550-ac2d5c38b2d6.jpg
validation/pants/2f03be8f-7053-4b94-b619-d5166b34ef3f.jpg
train/pants/d46ac56e-a5aa-4960-9b01-a072ad89a372.jpg
train/pants/0ad5bfb5-0f2b-4396-8c05-39ca0a9a2960.jpg
train/pants/03a43dea-405e-4a11-9716-2f790a95f699.jpg
train/pants/1042a9df-2411-4f6c-b156-1d0d94e2f6ed.jpg
train/pants/297b1d2d-70d6-42d9-a6eb-5d28c59f1061.jpg
test/pants/e3229e00-607a-4172-86b0-7205ac0c15fa.jpg
train/pants/23c11d4a-ba64-4640-83e1-11c6f0008b0b.jpg
train/pants/74e2adaf-72e7-405c-8e79-7dd804353143.jpg
train/pants/43d8bea9-3415-44e8-9245-987745ebca97.jpg
validation/pants/93a6f341-bdd7-4feb-88b6-8de1512ba7df.jpg
validation/pants/8f5774e2-9db8-43bd-8b3c-d8623f385eaa.jpg
train/pants/14625df7-84a3-435c-90a7-e57a9dce3888.jpg
train/pants/cddf9d3b-d75c-4915-9710-85d497a76476.jpg
train/pants/f7e20220-14c1-44c0-8d0b-e0ac4bf8b18b.jpg
train/pants/fb59bc3a-fdb9-498c-99a6-de73d500f643.jpg
train/pants/549efe03-629e-4620-9fe2-4ed3a9d856fd.jpg
train/pants/3901a67e-e2da-483f-89ac-e0472b33e5a9.jpg
train/pants/1d407629-87e5-4702-b9fc-e3b19de93570.jpg
train/pants/932d783e-f31c-4521-9b0b-d93769cf539c.jpg
test/pants/1b5f2882-e33e-4efc-b469-bcf87b9f53ed.jpg
train/pants/b7859e0b-68e6-40eb-b465-673ed0d96076.jpg
test/pants/9f0338d5-37b9-4837-964d-d68fa08cec3b.jpg
train/pants/50f4d78f-3cf3-4fdc-8cdc-28f2b5ee25bc.jpg
train/pants/12a89984-f366-4020-9eeb-922c00127951.jpg
train/pants/06697086-d232-4c13-a5ea-ebd759b53bc6.jpg
train/pants/4a462955-116b-4011-a81c-281658dfcc32.jpg
train/pants/e04c6715-e743-4645-8955-03e86801ec25.jpg
train/pants/c9ae97dd-eeb4-4ada-b7e2-b2728cf5758f.jpg
test/pants/c362d096-021d-4948-81ef-c2a971dc0998.jpg
validation/pants/923d98e5-ff69-4b81-a16a-3fd3571a9a4a.jpg
train/pants/47408816-4d1f-4e11-adba-84dc27a3b9bf.jpg
train/pants/b5a38d12-747c-4e7b-8530-cb21be5742cc.jpg
train/pants/a328ad16-d972-4e83-baa0-442cd0b0daea.jpg
train/pants/735b2cb6-8cd8-4103-8e8e-85888a6acb71.jpg
train/pants/e08fb363-2958-4dd7-88aa-fabe846b9f89.jpg
train/pants/e0dc1f06-78a4-488e-936a-5b2655a65ba6.jpg
train/pants/cdf7d80b-9429-4f4f-ab62-98fe5a60c15d.jpg
train/pants/b15f709d-f361-4dc0-a164-7dbcdf758a54.jpg
test/pants/bb336291-dc5d-442d-91f8-fcdf6cd258a4.jpg
train/pants/f5bbcb44-5901-4e36-ac2a-53693277bcea.jpg
train/pants/bbfb64cc-f0f9-470e-8b5a-eece4d4438fe.jpg
train/shorts/1f0f0d60-7a02-46e9-b875-e206c1d8995b.jpg
train/shorts/4e1b78ba-f25e-49f7-b9f9-03c8cefaea66.jpg
test/shorts/cbae96c4-ee32-4c10-a69e-d723e0a54480.jpg
train/shorts/a824deb0-6985-4b11-a987-74d47f5fc33e.jpg
train/shorts/35e0d6b8-da0c-4ce8-b2d6-6117d02e9549.jpg
test/shorts/9935412e-9bfe-49be-b291-574c235e32fb.jpg
train/shorts/efb95540-2516-4117-bef9-021a27eee668.jpg
test/shorts/06248e28-9e26-4036-8a8f-40cc605c83fb.jpg
validation/shorts/6505e289-1236-4675-8430-ebcc52fe4ca6.jpg
train/shorts/17e2ba0e-be9d-4fe4-b58b-2c039a693cb6.jpg
train/shorts/8f865a22-2ee6-4497-8231-f88da469d701.jpg
validation/shorts/27f3c569-0b20-4791-a39e-54a3c6e16da1.jpg
train/shorts/95f397b6-3807-4ed4-80fb-573103022fe2.jpg
train/shorts/1b9a7610-e6d9-4bb8-ace9-ed4870ae0d5b.jpg
test/shorts/d2de6083-5de4-4c29-9ff9-660759f40434.jpg
train/shorts/4dc28842-983c-4188-8c20-155d52bb7faf.jpg
train/shorts/de9cb15f-6aa5-4674-8b59-32370338dcef.jpg
train/shorts/2030d1b9-42f8-4e67-8d21-2f41d7480ec6.jpg
train/shorts/03422e19-ca67-4af9-a582-96118786658e.jpg
train/shorts/eaebcbd6-c54d-435e-a679-13ca18e96e4c.jpg
test/shorts/1e302085-eeb2-46ff-a4f6-e9bb5cfa44b1.jpg
test/shorts/ee64e502-6a14-44e0-abc9-1692299b00f6.jpg
test/shorts/78d2c5d2-b19d-422a-aff0-a6eb78291b4f.jpg
train/shorts/777c856d-c9ca-4ffb-b4e9-8dbee17ceba7.jpg
test/shorts/18260a42-3e2a-4bc6-b530-69135bf90434.jpg
test/shorts/39a1562b-9f9f-4e70-b593-79cdd63ac707.jpg
test/shorts/71238a2e-59be-4d4b-ac0e-9739d13fd41d.jpg
train/shorts/b203c1bf-6427-437b-b24f-2e2542c0ff14.jpg
train/shorts/31b22791-69bc-463c-9419-078fa2f90ef4.jpg
validation/shorts/6b825ceb-4d84-4fa2-8953-af936b3233ac.jpg
train/shorts/c1fe04e9-f2b4-4da8-a3cd-e11106c1a4cc.jpg
train/shorts/670e668a-2f7e-4a66-b93e-72c0e1c6cbd2.jpg
train/shorts/6ee3ab1d-a230-431f-b848-99f70173f3ab.jpg
test/shorts/5379356a-40ee-4890-b416-2336a7d84061.jpg
validation/shorts/0e88c86f-911f-4dd6-85b6-cb953e9dd2c5.jpg
train/skirt/2d758bb1-1a3b-4240-8fc0-ca9647ccba5d.jpg
test/skirt/32b99302-cec7-4dec-adfa-3d4029674209.jpg
train/skirt/69d4e9dd-3176-413f-8bff-fa9f8129e01c.jpg
train/skirt/6da4653c-905d-4257-aa82-824afda0c0a5.jpg
validation/skirt/ecdc68a9-12c7-449b-ab3a-4b2a8e71b197.jpg
test/skirt/2001dec1-1e0a-4c11-9d15-120b019b3dea.jpg
test/skirt/309829b2-6d1a-4173-8d46-2dbdd10aad90.jpg
train/skirt/125472d8-0f0a-4d45-b531-fb87a9d9d95e.jpg
train/skirt/f309b378-084e-4709-9519-7087175395ca.jpg
train/skirt/284149a9-e71e-4955-8228-7511fa592bc1.jpg
train/skirt/c763b1d1-ed61-4545-b740-501363ca613f.jpg
train/skirt/c938f1ac-6e47-41a9-8546-9ca7c27477aa.jpg
train/skirt/bd289469-607c-45df-bad3-ed1057e277bf.jpg
train/skirt/f3307762-77ad-4bb0-b50a-c3d661dfa8b1.jpg
train/skirt/abc109d6-6bb8-4772-8258-6dd92d9d86c1.jpg
train/skirt/978f5148-3c6b-4393-9d12-df98d51b8881.jpg
train/skirt/31fd2f8b-620c-405d-b9f9-5e676dbace96.jpg
test/skirt/95e66e02-b4ed-4fe9-b538-db6bac4fb7df.jpg
train/skirt/fdbcfdcd-5deb-4a20-9aef-b708831ef774.jpg
train/skirt/26921ddb-5f3e-4878-a156-3318f4d831b0.jpg
train/skirt/8b2ef33f-4b74-4967-9b9e-42345b599397.jpg
train/skirt/f66f8334-fa7c-44fb-a9db-2f4b0b407cf0.jpg
validation/skirt/4c2b720f-6916-4edf-a732-847c55eec881.jpg
train/skirt/2f8687c7-bdbf-449f-8528-639040681663.jpg
validation/skirt/bb361f03-abc9-4a8e-a2a4-ff306a5b4612.jpg
""".split("\n")[1:-1]


# VITON-HD cloth ids (all pairs in the fork agrikatheprogrammer/VITON-HD).
VITON_HD_IDS = """
00008_00
01260_00
01430_00
02783_00
03751_00
06429_00
06802_00
07429_00
08348_00
09933_00
11028_00
11351_00
11791_00
""".split("\n")[1:-1]


# Image numbers in dataset/INRIA/ of ruananswer/Articulated_Pose_Estimation_1 (INRIA Person negatives).
INRIA_NEGATIVES = """
00615
00619
00623
00627
00631
00639
00643
00647
00651
00655
00663
00667
00671
00675
00679
00687
00691
00695
00699
00703
00711
00715
00719
00723
00727
00735
00739
00743
00747
00751
00759
00763
00767
00771
00775
00783
00787
00791
00795
00799
00807
00811
00815
00819
00823
00831
00835
00839
00843
00847
00855
00859
00863
00867
00871
00879
00883
00887
00891
00895
00903
00907
00911
00915
00919
00927
00931
00935
00939
00943
00951
00955
00959
00963
00967
00975
00979
00983
00987
00991
00999
01003
01007
01011
01015
01023
01027
01031
01035
01039
01047
01051
01055
01059
01063
01071
01075
01079
01083
01087
01095
01099
01103
01107
01111
01119
01123
01127
01131
01135
01143
01147
01151
01155
01159
01167
01171
01175
01179
01183
01191
01195
01199
01203
01207
01215
01219
01223
01227
01231
01239
01243
01247
01251
01255
01263
01267
01271
01275
01279
01287
01291
01295
01299
01303
01311
01315
01319
01323
01327
01354
01355
01356
01364
01366
01371
01374
01376
01377
01378
01379
01381
01382
01395
01397
01407
01408
01414
01415
01416
01424
01431
01434
01437
01440
01441
01443
01444
01445
01446
01457
01459
01466
01470
01471
01472
01473
01509
01510
01511
01516
01517
01524
01525
01526
01537
01539
01541
01546
01548
01588
01589
01663
01664
01720
01721
01741
01742
01744
01750
01752
01757
01758
01766
01768
01770
01772
01775
01779
01784
01790
01793
01800
01808
01813
01594
01595
01598
01606
01607
01619
01621
01644
01645
""".split("\n")[1:-1]


# Crop names in dataset/LSP/dpm-neg/ of the same repository (LSP sports-venue crops).
LSP_DPM_NEGATIVES = """
im0012-rescaled
im0016-rescaled
im0046-rescaled
im0060-rescaled
im0081-rescaled
im0088-rescaled
im0103-rescaled
im0105-rescaled
im0151-rescaled
im0165-rescaled
im0173-rescaled
im0180-rescaled
im0200-rescaled
im0203-rescaled
im0205-rescaled
im0206-rescaled
im0257-rescaled
im0314-rescaled
im0377-rescaled
im0379-rescaled
im0383-rescaled
im0399-rescaled
im0402-rescaled
im0422-rescaled
im0481-rescaled
im0484-rescaled
im0491-rescaled
im0498-rescaled
im0520-rescaled
im0537-rescaled
im0538-rescaled
im0572-rescaled
im0591-rescaled
im0598-rescaled
im0605-rescaled
im0607-rescaled
im0640-rescaled
im0645-rescaled
im0672-rescaled
im0688-rescaled
im0691-rescaled
im0709-rescaled
im0725-rescaled
im0736-rescaled
im0781-rescaled
im0794-rescaled
im0819-rescaled
im0831-rescaled
im0845-rescaled
im0876-rescaled
im0906-rescaled
im0912-rescaled
im0952-rescaled
im0975-rescaled
""".split("\n")[1:-1]
